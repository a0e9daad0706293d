import assert from "node:assert/strict";
import { ArchiveFile } from "../../src/registry/archive_file.ts";
import { indexTar, normalizePath } from "../../src/registry/tar_index.ts";
import { tempArchive } from "../testdata/registry/archive_fixtures.ts";
import { tarBytes, type TarInput } from "../testdata/registry/tar_writer.ts";

const decoder = new TextDecoder();

async function indexOf(inputs: TarInput[], options: { endBlocks?: number } = {}) {
  await using tmp = await tempArchive(tarBytes(inputs, options));
  using file = await ArchiveFile.open(tmp.path);
  const index = await indexTar(file);
  const read = async (name: string) => {
    const entry = index.file(name);
    assert.ok(entry, `no file "${name}"`);
    return decoder.decode(await file.readExact(entry.offset, entry.size, name));
  };
  const contents = new Map<string, string>();
  for (const [name, entry] of index.entries) {
    if (entry.type === "file") contents.set(name, await read(name));
  }
  return { index, contents, files: [...index.entries.keys()] };
}

const longDir = `${"d".repeat(60)}/${"e".repeat(60)}`;
const longName = `${longDir}/${"f".repeat(70)}.txt`;

Deno.test("tar index finds plain ustar entries with their offsets and sizes", async () => {
  const { index, contents } = await indexOf([
    { name: "a.txt", data: "alpha" },
    { name: "dir/", type: "directory" },
    { name: "dir/b.txt", data: "x".repeat(1500) },
    { name: "empty", data: "" },
  ]);
  assert.equal(contents.get("a.txt"), "alpha");
  assert.equal(contents.get("dir/b.txt"), "x".repeat(1500));
  assert.equal(contents.get("empty"), "");
  assert.equal(index.entries.get("dir")?.type, "directory");
  assert.equal(index.entries.get("a.txt")?.offset, 512);
  assert.equal(index.entries.get("dir/b.txt")?.size, 1500);
});

Deno.test("tar index joins the ustar prefix field to the name", async () => {
  const { contents } = await indexOf([{
    name: longName,
    data: "prefixed",
    longNames: "ustar-prefix",
  }]);
  assert.equal(contents.get(longName), "prefixed");
});

Deno.test("tar index reads GNU long names and long link names", async () => {
  const { index, contents } = await indexOf([
    { name: longName, data: "gnu long", longNames: "gnu", gnuMagic: true },
    {
      name: `${longDir}/link-${"l".repeat(90)}`,
      type: "symlink",
      linkName: longName,
      longNames: "gnu",
    },
  ]);
  assert.equal(contents.get(longName), "gnu long");
  assert.equal(index.entries.has("././@LongLink"), false);
  const link = index.entries.get(`${longDir}/link-${"l".repeat(90)}`);
  assert.equal(link?.type, "symlink");
  assert.equal(link?.linkName, longName);
});

Deno.test("tar index reads PAX path and linkpath records", async () => {
  const unicode = `${"ü".repeat(60)}/layer.tar`;
  const { index, contents } = await indexOf([
    { name: longName, data: "pax long", longNames: "pax" },
    { name: unicode, data: "unicode", longNames: "pax" },
    { name: "short-link", type: "hardlink", linkName: longName, longNames: "pax" },
  ]);
  assert.equal(contents.get(longName), "pax long");
  assert.equal(contents.get(unicode), "unicode");
  assert.equal(index.entries.get("short-link")?.linkName, longName);
  assert.ok(![...index.entries.keys()].some((k) => k.startsWith("PaxHeaders")));
});

Deno.test("tar index reads base-256 size fields", async () => {
  const { contents } = await indexOf([{ name: "big", data: "y".repeat(700), base256Size: true }]);
  assert.equal(contents.get("big"), "y".repeat(700));
});

Deno.test("tar index follows symlinks and hard links to the file", async () => {
  const { index, contents } = await indexOf([
    { name: "a/layer.tar", data: "layer" },
    { name: "b/layer.tar", type: "symlink", linkName: "../a/layer.tar" },
    { name: "c/layer.tar", type: "hardlink", linkName: "b/layer.tar" },
    { name: "loop1", type: "symlink", linkName: "loop2" },
    { name: "loop2", type: "symlink", linkName: "loop1" },
    { name: "dangling", type: "symlink", linkName: "nowhere" },
  ]);
  assert.equal(contents.get("a/layer.tar"), "layer");
  assert.equal(index.file("b/layer.tar")?.name, "a/layer.tar");
  assert.equal(index.file("c/layer.tar")?.name, "a/layer.tar");
  assert.equal(index.file("loop1"), undefined);
  assert.equal(index.file("dangling"), undefined);
  assert.equal(index.file("a"), undefined);
});

Deno.test("tar index normalizes ./ prefixes and a later entry wins", async () => {
  const { contents, files } = await indexOf([
    { name: "./", type: "directory" },
    { name: "./x.json", data: "old" },
    { name: "x.json", data: "new" },
  ]);
  assert.deepEqual(files, ["x.json"]);
  assert.equal(contents.get("x.json"), "new");
});

Deno.test("tar index accepts an archive that ends without end-of-archive blocks", async () => {
  const { contents } = await indexOf([{ name: "a", data: "1" }], { endBlocks: 0 });
  assert.equal(contents.get("a"), "1");
});

Deno.test("tar index reads an empty archive", async () => {
  const { files } = await indexOf([]);
  assert.deepEqual(files, []);
});

Deno.test("tar index rejects a truncated archive naming the offset", async () => {
  const bytes = tarBytes([{ name: "a", data: "z".repeat(5000) }]);
  await using tmp = await tempArchive(bytes.subarray(0, 2048));
  using file = await ArchiveFile.open(tmp.path);
  await assert.rejects(
    indexTar(file),
    /at offset 0: entry needs 5000 bytes but the file ends first/,
  );
});

Deno.test("tar index rejects a gzip-compressed archive with a hint", async () => {
  const gz = await new Response(
    new Blob([tarBytes([{ name: "a", data: "1" }])]).stream().pipeThrough(
      new CompressionStream("gzip"),
    ),
  ).bytes();
  await using tmp = await tempArchive(gz);
  using file = await ArchiveFile.open(tmp.path);
  await assert.rejects(indexTar(file), /gzip-compressed.*decompress it first/);
});

Deno.test("tar index rejects a file that is not a tar", async () => {
  await using tmp = await tempArchive(new TextEncoder().encode("{}".padEnd(2048, " ")));
  using file = await ArchiveFile.open(tmp.path);
  await assert.rejects(indexTar(file), /header checksum mismatch/);
});

Deno.test("normalizePath never climbs above the root", () => {
  assert.equal(normalizePath("./a//b/../c/"), "a/c");
  assert.equal(normalizePath("../../etc/passwd"), "etc/passwd");
  assert.equal(normalizePath("/abs/x"), "abs/x");
  assert.equal(normalizePath("./"), "");
});
