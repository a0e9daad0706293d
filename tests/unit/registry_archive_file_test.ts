import assert from "node:assert/strict";
import { ArchiveFile } from "../../src/registry/archive_file.ts";
import { tempArchive } from "../testdata/registry/archive_fixtures.ts";

Deno.test("archive file streams a range in bounded chunks and hashes it", async () => {
  const data = new Uint8Array(3 * (1 << 20) + 17).map((_, i) => i % 251);
  await using tmp = await tempArchive(data);
  using file = await ArchiveFile.open(tmp.path);
  const chunks: number[] = [];
  const collected: Uint8Array<ArrayBuffer>[] = [];
  for await (const c of file.stream(5, data.length - 10, "test")) {
    chunks.push(c.length);
    collected.push(c);
  }
  assert.ok(Math.max(...chunks) <= 1 << 20);
  const joined = new Uint8Array(await new Blob(collected).arrayBuffer());
  assert.deepEqual(joined, data.subarray(5, data.length - 5));
  const expected = new Uint8Array(
    await crypto.subtle.digest("SHA-256", data.subarray(5, data.length - 5)),
  );
  const hex = [...expected].map((b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(await file.sha256(5, data.length - 10, "test"), `sha256:${hex}`);
  await assert.rejects(file.sha256(0, data.length + 1, "too much"), /is truncated: too much/);
});

Deno.test("archive file fails streams once closed", async () => {
  await using tmp = await tempArchive(new Uint8Array(3 << 20));
  const file = await ArchiveFile.open(tmp.path);
  const reader = file.stream(0, 3 << 20, "blob").getReader();
  assert.equal((await reader.read()).value?.length, 1 << 20);
  file.close();
  await assert.rejects(reader.read(), /is closed/);
});

Deno.test("archive file names the path it cannot open", async () => {
  await assert.rejects(
    ArchiveFile.open("/nonexistent/x.tar"),
    /Cannot open archive "\/nonexistent\/x.tar": /,
  );
});

Deno.test("archive file serves concurrent streams from one handle without mixing bytes", async () => {
  const data = new Uint8Array(6 << 20).map((_, i) => (i * 7 + (i >> 20)) % 256);
  await using tmp = await tempArchive(data);
  using file = await ArchiveFile.open(tmp.path);
  const ranges: [number, number][] = [[0, 3 << 20], [1 << 20, 5 << 20], [123, (6 << 20) - 123]];
  const results = await Promise.all(
    ranges.map(([start, length]) => new Response(file.stream(start, length, "r")).bytes()),
  );
  results.forEach((bytes, i) => {
    const [start, length] = ranges[i]!;
    assert.deepEqual(bytes, data.subarray(start, start + length));
  });
});

Deno.test("archive file tail runs from the offset to the end of the file", async () => {
  const data = new Uint8Array(3 << 20).map((_, i) => (i * 13 + (i >> 16)) % 256);
  await using tmp = await tempArchive(data);
  using file = await ArchiveFile.open(tmp.path);
  const tail = await file.fileTail(12345, 1 << 20);
  assert.ok(tail, "a tail of the file as it was opened");
  assert.deepEqual(await new Response(tail).bytes(), data.subarray(12345));
  assert.equal(await file.fileTail(data.length - 10, 11), undefined, "shorter than asked for");
});

Deno.test("archive file tail is refused once the path names another file or none", async () => {
  const data = new Uint8Array(1 << 20).fill(1);
  await using tmp = await tempArchive(data);
  await using other = await tempArchive(new Uint8Array(1 << 20).fill(2));
  using file = await ArchiveFile.open(tmp.path);
  await Deno.rename(other.path, tmp.path);
  assert.equal(await file.fileTail(0, 10), undefined, "replaced");
  // Positioned reads stay on the file that was opened.
  assert.deepEqual(await new Response(file.stream(0, 10, "x")).bytes(), data.subarray(0, 10));
  await Deno.remove(tmp.path);
  assert.equal(await file.fileTail(0, 10), undefined, "removed");
});

Deno.test("archive file tail is refused once the archive is closed", async () => {
  await using tmp = await tempArchive(new Uint8Array(1024));
  const file = await ArchiveFile.open(tmp.path);
  file.close();
  assert.equal(await file.fileTail(0, 10), undefined);
});
