import assert from "node:assert/strict";
import { DockerArchive } from "../../src/registry/docker_archive.ts";
import { DOCKER_MANIFEST_V2 } from "../../src/registry/media_types.ts";
import {
  createRegistryHandler,
  type RegistryHandler,
} from "../../src/registry/registry_handler.ts";
import {
  type BuiltImage,
  fakeLayer,
  legacyArchive,
  noiseLayer,
  OCI_INDEX,
  OCI_MANIFEST,
  ociArchive,
  sha256,
  tempArchive,
} from "../testdata/registry/archive_fixtures.ts";

const BASE = "http://registry.test";
const UNKNOWN = sha256("nothing has this digest");

interface Fixture extends AsyncDisposable {
  handler: RegistryHandler;
  legacy: BuiltImage;
  other: BuiltImage;
  oci: BuiltImage;
  legacyManifestDigest: string;
}

/**
 * One legacy archive with two images and one OCI archive with an index root,
 * served as "bottle/agent:abc123" (+ ":latest"), "other:1" and
 * "deep/nested/oci:v1".
 */
async function fixture(): Promise<Fixture> {
  const legacy = legacyArchive([
    { repoTags: ["agent:build"], layers: [fakeLayer("l1", 3000), fakeLayer("l2", 700)] },
    { repoTags: ["other:1"], layers: [fakeLayer("other")] },
  ]);
  const oci = ociArchive([{ names: ["docker.io/library/o:1"], layers: [fakeLayer("o", 2000)] }], {
    wrapInIndex: true,
  });
  const legacyTmp = await tempArchive(legacy.bytes);
  const ociTmp = await tempArchive(oci.bytes);
  const legacyArchiveFile = await DockerArchive.open(legacyTmp.path);
  const ociArchiveFile = await DockerArchive.open(ociTmp.path);
  const agent = legacyArchiveFile.image("agent:build");
  const handler = createRegistryHandler({
    "bottle/agent:abc123": agent,
    "bottle/agent:latest": agent,
    "other:1": legacyArchiveFile.image("other:1"),
    "deep/nested/oci:v1": ociArchiveFile.image("o:1"),
  });
  return {
    handler,
    legacy: legacy.images[0]!,
    other: legacy.images[1]!,
    oci: oci.images[0]!,
    legacyManifestDigest: (await agent.rootManifest()).digest,
    async [Symbol.asyncDispose]() {
      legacyArchiveFile.close();
      ociArchiveFile.close();
      await legacyTmp[Symbol.asyncDispose]();
      await ociTmp[Symbol.asyncDispose]();
    },
  };
}

function get(handler: RegistryHandler, path: string, init: RequestInit = {}): Promise<Response> {
  return handler(new Request(`${BASE}${path}`, init));
}

async function errorCode(response: Response): Promise<string> {
  const body = await response.json();
  assert.equal(body.errors.length, 1);
  assert.equal(typeof body.errors[0].message, "string");
  return body.errors[0].code;
}

Deno.test("registry handler: GET /v2/ answers with the API version header", async () => {
  await using f = await fixture();
  for (const path of ["/v2/", "/v2"]) {
    const res = await get(f.handler, path);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("Docker-Distribution-API-Version"), "registry/2.0");
    assert.deepEqual(await res.json(), {});
  }
});

Deno.test("registry handler: a manifest by tag carries its media type, length and digest", async () => {
  await using f = await fixture();
  const res = await get(f.handler, "/v2/bottle/agent/manifests/abc123", {
    headers: { Accept: `${DOCKER_MANIFEST_V2}, ${OCI_MANIFEST}` },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("Content-Type"), DOCKER_MANIFEST_V2);
  const body = await res.bytes();
  assert.equal(res.headers.get("Content-Length"), String(body.length));
  assert.equal(res.headers.get("Docker-Content-Digest"), sha256(body));
  assert.equal(res.headers.get("Docker-Content-Digest"), f.legacyManifestDigest);
  const manifest = JSON.parse(new TextDecoder().decode(body));
  assert.equal(manifest.config.digest, f.legacy.configDigest);
  assert.deepEqual(manifest.layers.map((l: { digest: string }) => l.digest), f.legacy.layerDigests);
});

Deno.test("registry handler: HEAD of a manifest has the GET headers and no body", async () => {
  await using f = await fixture();
  const got = await get(f.handler, "/v2/bottle/agent/manifests/latest");
  const head = await get(f.handler, "/v2/bottle/agent/manifests/latest", { method: "HEAD" });
  assert.equal(head.status, 200);
  for (const h of ["Content-Type", "Content-Length", "Docker-Content-Digest"]) {
    assert.equal(head.headers.get(h), got.headers.get(h), h);
  }
  assert.equal(head.body, null);
  await got.body?.cancel();
});

Deno.test("registry handler: manifests by digest, including an index's child", async () => {
  await using f = await fixture();
  const byDigest = await get(f.handler, `/v2/bottle/agent/manifests/${f.legacyManifestDigest}`);
  assert.equal(byDigest.status, 200);
  assert.equal(sha256(await byDigest.bytes()), f.legacyManifestDigest);

  const index = await get(f.handler, "/v2/deep/nested/oci/manifests/v1");
  assert.equal(index.headers.get("Content-Type"), OCI_INDEX);
  assert.equal(index.headers.get("Docker-Content-Digest"), f.oci.indexDigest);
  await index.body?.cancel();
  const child = await get(f.handler, `/v2/deep/nested/oci/manifests/${f.oci.manifestDigest}`);
  assert.equal(child.status, 200);
  assert.equal(child.headers.get("Content-Type"), OCI_MANIFEST);
  assert.equal(sha256(await child.bytes()), f.oci.manifestDigest);
});

Deno.test("registry handler: blobs stream with length, digest and octet-stream type", async () => {
  await using f = await fixture();
  for (const [i, digest] of f.legacy.layerDigests.entries()) {
    const res = await get(f.handler, `/v2/bottle/agent/blobs/${digest}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("Content-Type"), "application/octet-stream");
    assert.equal(res.headers.get("Docker-Content-Digest"), digest);
    assert.equal(res.headers.get("Content-Length"), String(f.legacy.layers[i]!.length));
    assert.deepEqual(await res.bytes(), f.legacy.layers[i]);
  }
  const config = await get(f.handler, `/v2/bottle/agent/blobs/${f.legacy.configDigest}`);
  assert.deepEqual(await config.bytes(), f.legacy.config);
  const head = await get(f.handler, `/v2/deep/nested/oci/blobs/${f.oci.layerDigests[0]}`, {
    method: "HEAD",
  });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("Content-Length"), "2000");
  assert.equal(head.body, null);
});

Deno.test("registry handler: a manifest is also served from the blobs endpoint", async () => {
  await using f = await fixture();
  const res = await get(f.handler, `/v2/bottle/agent/blobs/${f.legacyManifestDigest}`);
  assert.equal(res.status, 200);
  assert.equal(sha256(await res.bytes()), f.legacyManifestDigest);
});

Deno.test("registry handler: byte ranges resume a blob download", async () => {
  await using f = await fixture();
  const digest = f.legacy.layerDigests[0]!;
  const layer = f.legacy.layers[0]!;
  const path = `/v2/bottle/agent/blobs/${digest}`;
  const part = await get(f.handler, path, { headers: { Range: "bytes=100-199" } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get("Content-Range"), `bytes 100-199/${layer.length}`);
  assert.equal(part.headers.get("Content-Length"), "100");
  assert.deepEqual(await part.bytes(), layer.subarray(100, 200));
  const open = await get(f.handler, path, { headers: { Range: "bytes=2990-" } });
  assert.deepEqual(await open.bytes(), layer.subarray(2990));
  const suffix = await get(f.handler, path, { headers: { Range: "bytes=-5" } });
  assert.deepEqual(await suffix.bytes(), layer.subarray(layer.length - 5));
  const beyond = await get(f.handler, path, { headers: { Range: "bytes=5000-" } });
  assert.equal(beyond.status, 416);
  assert.equal(beyond.headers.get("Content-Range"), `bytes */${layer.length}`);
  const multi = await get(f.handler, path, { headers: { Range: "bytes=0-1,5-6" } });
  assert.equal(multi.status, 200, "multiple ranges fall back to the whole blob");
  await multi.body?.cancel();
});

Deno.test("registry handler: unknown names, tags and digests answer 404 with OCI error codes", async () => {
  await using f = await fixture();
  const cases: [string, string][] = [
    ["/v2/nope/manifests/latest", "NAME_UNKNOWN"],
    ["/v2/bottle/agent/manifests/nosuchtag", "MANIFEST_UNKNOWN"],
    [`/v2/bottle/agent/manifests/${UNKNOWN}`, "MANIFEST_UNKNOWN"],
    [`/v2/bottle/agent/blobs/${UNKNOWN}`, "BLOB_UNKNOWN"],
    ["/v2/bottle/manifests/abc123", "NAME_UNKNOWN"],
    [`/v2/nope/blobs/${f.legacy.configDigest}`, "NAME_UNKNOWN"],
  ];
  for (const [path, code] of cases) {
    const res = await get(f.handler, path);
    assert.equal(res.status, 404, path);
    assert.equal(res.headers.get("Content-Type"), "application/json");
    assert.equal(await errorCode(res), code, path);
  }
});

Deno.test("registry handler: digests resolve only within the repository's own images", async () => {
  await using f = await fixture();
  const res = await get(f.handler, `/v2/bottle/agent/blobs/${f.other.layerDigests[0]}`);
  assert.equal(res.status, 404);
  assert.equal(await errorCode(res), "BLOB_UNKNOWN");
  const own = await get(f.handler, `/v2/other/blobs/${f.other.layerDigests[0]}`);
  assert.equal(own.status, 200);
  await own.body?.cancel();
});

Deno.test("registry handler: malformed digests answer 400 DIGEST_INVALID", async () => {
  await using f = await fixture();
  for (const path of ["/v2/bottle/agent/blobs/sha256:xyz!", "/v2/bottle/agent/manifests/sha256:"]) {
    const res = await get(f.handler, path);
    assert.equal(res.status, 400, path);
    assert.equal(await errorCode(res), "DIGEST_INVALID");
  }
});

Deno.test("registry handler: every writing method answers 405 UNSUPPORTED", async () => {
  await using f = await fixture();
  const writes: [string, string][] = [
    ["POST", "/v2/bottle/agent/blobs/uploads/"],
    ["PUT", "/v2/bottle/agent/manifests/abc123"],
    ["PATCH", "/v2/bottle/agent/blobs/uploads/123"],
    ["DELETE", `/v2/bottle/agent/manifests/${f.legacyManifestDigest}`],
    ["DELETE", `/v2/bottle/agent/blobs/${f.legacy.configDigest}`],
  ];
  for (const [method, path] of writes) {
    const res = await get(f.handler, path, { method, body: method === "DELETE" ? null : "x" });
    assert.equal(res.status, 405, `${method} ${path}`);
    assert.equal(res.headers.get("Allow"), "GET, HEAD");
    assert.equal(await errorCode(res), "UNSUPPORTED");
  }
  const still = await get(f.handler, "/v2/bottle/agent/manifests/abc123");
  assert.equal(still.status, 200);
  await still.body?.cancel();
});

Deno.test("registry handler: Accept without the manifest's media type is refused like distribution", async () => {
  await using f = await fixture();
  const refused = await get(f.handler, "/v2/deep/nested/oci/manifests/v1", {
    headers: { Accept: `${OCI_MANIFEST}, ${DOCKER_MANIFEST_V2}` },
  });
  assert.equal(refused.status, 404);
  assert.equal(await errorCode(refused), "MANIFEST_UNKNOWN");
  for (const accept of [`${OCI_INDEX};q=0.9`, "*/*", "application/*", ""]) {
    const ok = await get(f.handler, "/v2/deep/nested/oci/manifests/v1", {
      headers: { Accept: accept },
    });
    assert.equal(ok.status, 200, accept);
    await ok.body?.cancel();
  }
});

Deno.test("registry handler: tags/list and _catalog list what is served", async () => {
  await using f = await fixture();
  const tags = await get(f.handler, "/v2/bottle/agent/tags/list");
  assert.deepEqual(await tags.json(), { name: "bottle/agent", tags: ["abc123", "latest"] });
  const catalog = await get(f.handler, "/v2/_catalog");
  assert.deepEqual(await catalog.json(), {
    repositories: ["bottle/agent", "deep/nested/oci", "other"],
  });
});

Deno.test("registry handler: percent-encoded digests are decoded", async () => {
  await using f = await fixture();
  const res = await get(
    f.handler,
    `/v2/bottle/agent/blobs/${f.legacy.configDigest.replace(":", "%3A")}`,
  );
  assert.equal(res.status, 200);
  await res.body?.cancel();
});

Deno.test("registry handler: content failures answer 500 UNKNOWN and reach onError", async () => {
  const { bytes } = legacyArchive([{ repoTags: ["a:1"], layers: [fakeLayer("x")] }]);
  await using tmp = await tempArchive(bytes);
  const archive = await DockerArchive.open(tmp.path);
  const errors: unknown[] = [];
  const handler = createRegistryHandler({ "a:1": archive.image() }, {
    onError: (err) => errors.push(err),
  });
  archive.close();
  const res = await get(handler, "/v2/a/manifests/1");
  assert.equal(res.status, 500);
  assert.equal(await errorCode(res), "UNKNOWN");
  assert.match(String(errors[0]), /is closed/);
});

Deno.test("registry handler: invalid references are refused when the handler is made", async () => {
  const { bytes } = legacyArchive([{ repoTags: ["a:1"], layers: [fakeLayer("x")] }]);
  await using tmp = await tempArchive(bytes);
  await using archive = await DockerArchive.open(tmp.path);
  for (const bad of ["Upper/case:1", "a:bad tag", "a//b:1"]) {
    assert.throws(
      () => createRegistryHandler({ [bad]: archive.image() }),
      /Invalid registry reference/,
      bad,
    );
  }
});

Deno.test("registry handler: native file bodies are large blobs over HTTP/1 that Content-Length ends", async () => {
  const big = noiseLayer((2 << 20) + 3);
  const small = fakeLayer("small", 1000);
  const { bytes } = legacyArchive([{ repoTags: ["a:1"], layers: [big, small] }]);
  await using tmp = await tempArchive(bytes);
  await using archive = await DockerArchive.open(tmp.path);
  const native = createRegistryHandler({ "a:1": archive.image() }, { nativeFileBodies: true });
  const host = { Host: "registry.test" };
  const path = `/v2/a/blobs/${sha256(big)}`;

  // The blob and then the rest of the archive: Deno.serve stops at Content-Length.
  const whole = await get(native, path, { headers: host });
  assert.equal(whole.headers.get("Content-Length"), String(big.length));
  const tail = await whole.bytes();
  assert.ok(tail.length > big.length, "runs on past the blob");
  assert.deepEqual(tail.subarray(0, big.length), big);
  const ranged = await get(native, path, { headers: { ...host, Range: "bytes=1000-" } });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers.get("Content-Length"), String(big.length - 1000));
  assert.deepEqual((await ranged.bytes()).subarray(0, big.length - 1000), big.subarray(1000));

  // Exact bodies: no Host (HTTP/2), a blob that fits one chunk, or the option off.
  assert.deepEqual(await (await get(native, path)).bytes(), big);
  const smallPath = `/v2/a/blobs/${sha256(small)}`;
  assert.deepEqual(await (await get(native, smallPath, { headers: host })).bytes(), small);
  const plain = createRegistryHandler({ "a:1": archive.image() });
  assert.deepEqual(await (await get(plain, path, { headers: host })).bytes(), big);
});
