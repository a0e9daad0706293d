import assert from "node:assert/strict";
import { DockerArchive } from "../../src/registry/docker_archive.ts";
import type { RegistryBlob } from "../../src/registry/image_content.ts";
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_TAR,
  DOCKER_MANIFEST_V2,
} from "../../src/registry/media_types.ts";
import {
  fakeLayer,
  legacyArchive,
  OCI_INDEX,
  OCI_MANIFEST,
  ociArchive,
  sha256,
  tempArchive,
} from "../testdata/registry/archive_fixtures.ts";
import { tarBytes } from "../testdata/registry/tar_writer.ts";

async function bytesOf(
  blob: RegistryBlob | undefined,
  start?: number,
  end?: number,
): Promise<Uint8Array> {
  assert.ok(blob, "blob not found");
  return await new Response(blob.stream(start, end)).bytes();
}

function parse(bytes: Uint8Array): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(bytes));
}

Deno.test("legacy archive: synthesizes a schema2 manifest with computed digests", async () => {
  const layers = [fakeLayer("base", 5000), fakeLayer("app", 1234), fakeLayer("top", 1)];
  const { bytes, images } = legacyArchive([{ repoTags: ["bottle/agent:abc123"], layers }]);
  await using tmp = await tempArchive(bytes);
  await using archive = await DockerArchive.open(tmp.path);
  assert.equal(archive.layout, "legacy");
  const image = archive.image("bottle/agent:abc123");
  const manifest = await image.rootManifest();
  assert.equal(manifest.mediaType, DOCKER_MANIFEST_V2);
  assert.equal(manifest.digest, sha256(manifest.bytes));
  const json = parse(manifest.bytes);
  assert.deepEqual(json, {
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST_V2,
    config: {
      mediaType: DOCKER_CONFIG,
      size: images[0]!.config.length,
      digest: images[0]!.configDigest,
    },
    layers: layers.map((l) => ({ mediaType: DOCKER_LAYER_TAR, size: l.length, digest: sha256(l) })),
  });
  assert.deepEqual(await bytesOf(await image.blob(images[0]!.configDigest)), images[0]!.config);
  for (const layer of layers) {
    assert.deepEqual(await bytesOf(await image.blob(sha256(layer))), layer);
  }
  assert.deepEqual(
    await bytesOf(await image.blob(sha256(layers[0]!)), 10, 20),
    layers[0]!.subarray(10, 20),
  );
  assert.equal(await image.manifest(manifest.digest), manifest);
  assert.equal(await image.blob(sha256("other")), undefined);
  assert.equal(await image.manifest(sha256("other")), undefined);
});

Deno.test("legacy archive: the manifest is computed once and stays byte-identical", async () => {
  const { bytes } = legacyArchive([{ repoTags: ["a:1"], layers: [fakeLayer("x")] }]);
  await using tmp = await tempArchive(bytes);
  await using archive = await DockerArchive.open(tmp.path);
  const [first, second] = await Promise.all([
    archive.image().rootManifest(),
    archive.image().rootManifest(),
  ]);
  assert.equal(first, second);
});

Deno.test("legacy archive: a layer Docker wrote as a symlink serves the linked bytes", async () => {
  const shared = fakeLayer("shared", 3000);
  const { bytes, images } = legacyArchive([
    { repoTags: ["one:1"], layers: [shared, fakeLayer("one")] },
    { repoTags: ["two:2"], layers: [shared, fakeLayer("two"), shared] },
  ]);
  await using tmp = await tempArchive(bytes);
  await using archive = await DockerArchive.open(tmp.path);
  assert.equal(archive.images.length, 2);
  const two = archive.image("two:2");
  const layers = parse((await two.rootManifest()).bytes).layers as { digest: string }[];
  assert.deepEqual(layers.map((l) => l.digest), images[1]!.layerDigests);
  assert.deepEqual(await bytesOf(await two.blob(sha256(shared))), shared);
  // Blobs stay scoped to their image.
  assert.equal(await two.blob(sha256(fakeLayer("one"))), undefined);
});

Deno.test("legacy archive: long layer paths in PAX and GNU headers and ./ prefixes", async () => {
  for (const longNames of ["pax", "gnu", "ustar-prefix"] as const) {
    const layers = [fakeLayer("p1"), fakeLayer("p2")];
    const { bytes, images } = legacyArchive([{ repoTags: ["long/names:x"], layers }], {
      layerDir: (_n, i) => `${"a".repeat(70)}/${"b".repeat(70)}-${i}`,
      longNames,
      dotSlash: true,
    });
    await using tmp = await tempArchive(bytes);
    await using archive = await DockerArchive.open(tmp.path);
    const image = archive.image("long/names:x");
    await image.rootManifest();
    assert.deepEqual(
      await bytesOf(await image.blob(images[0]!.layerDigests[1]!)),
      layers[1],
      longNames,
    );
  }
});

Deno.test("legacy archive: images are found by tag in any spelling and by ID", async () => {
  const { bytes, images } = legacyArchive([
    { repoTags: ["debian:bookworm-slim", "localhost:5000/x/y:z"], layers: [fakeLayer("d")] },
    { repoTags: ["alpine:latest"], layers: [fakeLayer("a")] },
    { repoTags: null, layers: [fakeLayer("untagged")] },
  ]);
  await using tmp = await tempArchive(bytes);
  await using archive = await DockerArchive.open(tmp.path);
  const [debian, alpine, untagged] = archive.images;
  assert.equal(archive.image("debian:bookworm-slim"), debian);
  assert.equal(archive.image("docker.io/library/debian:bookworm-slim"), debian);
  assert.equal(archive.image("localhost:5000/x/y:z"), debian);
  assert.equal(archive.image("alpine"), alpine);
  assert.equal(archive.image("docker.io/alpine:latest"), alpine);
  assert.equal(archive.image(images[2]!.configDigest), untagged);
  assert.equal(archive.image(images[2]!.configDigest.slice(7, 19)), untagged);
  assert.deepEqual(untagged?.names, []);
  assert.throws(
    () => archive.image(),
    /holds 3 images: name one of "debian:bookworm-slim", "alpine:latest", "sha256:/,
  );
  assert.throws(() => archive.image("debian:sid"), /has no image "debian:sid": it holds/);
});

Deno.test("legacy archive: a missing layer file fails at open, naming it", async () => {
  const { bytes } = legacyArchive([{ repoTags: ["a:1"], layers: [fakeLayer("x")] }], {
    layerDir: () => "gone",
    omit: "gone/layer.tar",
  });
  await using tmp = await tempArchive(bytes);
  await assert.rejects(
    DockerArchive.open(tmp.path),
    /layer "gone\/layer.tar" is not in the archive/,
  );
});

Deno.test("legacy archive: a layer that does not match the config's diff_ids is refused", async () => {
  const config = new TextEncoder().encode(JSON.stringify({
    rootfs: { type: "layers", diff_ids: [sha256("something else")] },
  }));
  const { bytes } = legacyArchive([{ repoTags: ["a:1"], layers: [fakeLayer("x")], config }]);
  await using tmp = await tempArchive(bytes);
  await using archive = await DockerArchive.open(tmp.path);
  await assert.rejects(
    archive.image().rootManifest(),
    /is inconsistent: layer ".*layer.tar" has digest "sha256:[0-9a-f]{64}" but the config expects/,
  );
});

Deno.test("OCI archive (Docker 25+): serves manifests and blobs as stored, named by annotations and RepoTags", async () => {
  const layers = [fakeLayer("oci-1", 4000), fakeLayer("oci-2", 10)];
  const { bytes, images } = ociArchive([
    { names: ["docker.io/library/app:1", "docker.io/library/app:latest"], layers },
    { names: ["docker.io/bottle/agent:abc"], layers: [fakeLayer("agent")] },
  ]);
  await using tmp = await tempArchive(bytes);
  await using archive = await DockerArchive.open(tmp.path);
  assert.equal(archive.layout, "oci");
  assert.equal(archive.images.length, 2);
  const app = archive.image("app:1");
  assert.equal(archive.image("app"), app);
  assert.equal(archive.image("docker.io/library/app:latest"), app);
  assert.equal(archive.image("bottle/agent:abc"), archive.images[1]);
  assert.equal(archive.image(images[0]!.manifestDigest!), app);
  assert.equal(archive.image(images[0]!.configDigest), app);
  const manifest = await app.rootManifest();
  assert.equal(manifest.mediaType, OCI_MANIFEST);
  assert.equal(manifest.digest, images[0]!.manifestDigest);
  assert.equal(sha256(manifest.bytes), manifest.digest);
  assert.deepEqual(await bytesOf(await app.blob(images[0]!.configDigest)), images[0]!.config);
  assert.deepEqual(await bytesOf(await app.blob(sha256(layers[0]!))), layers[0]);
  assert.equal(await app.blob(images[1]!.layerDigests[0]!), undefined, "other image's blob");
});

Deno.test("OCI archive: skopeo-style ref names and no manifest.json", async () => {
  const { bytes } = ociArchive(
    [{ names: ["docker.io/library/tool:2"], layers: [fakeLayer("t")] }],
    {
      annotations: "skopeo",
      manifestJson: false,
      dotSlash: true,
    },
  );
  await using tmp = await tempArchive(bytes);
  await using archive = await DockerArchive.open(tmp.path);
  assert.deepEqual(archive.image("tool:2").names, ["tool:2"]);
});

Deno.test("OCI archive: unannotated descriptors take their names from manifest.json", async () => {
  const { bytes } = ociArchive(
    [{ names: ["docker.io/library/plain:9"], layers: [fakeLayer("p")] }],
    {
      annotations: "none",
    },
  );
  await using tmp = await tempArchive(bytes);
  await using archive = await DockerArchive.open(tmp.path);
  assert.deepEqual(archive.image("plain:9").names, ["plain:9"]);
});

Deno.test("OCI archive: an index root serves the saved platform and not the missing one", async () => {
  const layers = [fakeLayer("amd64")];
  const { bytes, images } = ociArchive([{ names: ["docker.io/library/multi:1"], layers }], {
    wrapInIndex: true,
  });
  await using tmp = await tempArchive(bytes);
  await using archive = await DockerArchive.open(tmp.path);
  const image = archive.image("multi:1");
  const root = await image.rootManifest();
  assert.equal(root.mediaType, OCI_INDEX);
  assert.equal(root.digest, images[0]!.indexDigest);
  const child = await image.manifest(images[0]!.manifestDigest!);
  assert.equal(child?.mediaType, OCI_MANIFEST);
  const missing = (parse(root.bytes).manifests as { digest: string }[])[1]!.digest;
  assert.equal(await image.manifest(missing), undefined);
  assert.deepEqual(await bytesOf(await image.blob(sha256(layers[0]!))), layers[0]);
  assert.equal(
    archive.image(images[0]!.configDigest),
    image,
    "found by the platform's config digest",
  );
});

Deno.test("OCI archive: a manifest blob that does not match its digest is refused at open", async () => {
  const { bytes } = ociArchive([{ names: ["docker.io/library/bad:1"], layers: [fakeLayer("b")] }], {
    corruptManifest: true,
  });
  await using tmp = await tempArchive(bytes);
  await assert.rejects(
    DockerArchive.open(tmp.path),
    /is corrupt: blob "blobs\/sha256\/[0-9a-f]{64}" has digest/,
  );
});

Deno.test("docker archive: a tar that is not a docker save archive is refused", async () => {
  await using tmp = await tempArchive(tarBytes([{ name: "hello.txt", data: "hi" }]));
  await assert.rejects(
    DockerArchive.open(tmp.path),
    /Cannot read docker archive ".*": it has neither "manifest.json" nor "oci-layout" with "index.json"/,
  );
});

Deno.test("docker archive: a malformed manifest.json is refused with the field", async () => {
  await using tmp = await tempArchive(tarBytes([
    { name: "manifest.json", data: JSON.stringify([{ Config: "x.json", RepoTags: null }]) },
  ]));
  await assert.rejects(
    DockerArchive.open(tmp.path),
    /"manifest.json" in ".*": entry 0 has no "Layers" list of strings/,
  );
});
