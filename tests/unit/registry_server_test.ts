import assert from "node:assert/strict";
import { serveRegistry } from "../../src/registry/registry_server.ts";
import { DOCKER_MANIFEST_V2 } from "../../src/registry/media_types.ts";
import {
  fakeLayer,
  legacyArchive,
  ociArchive,
  sha256,
  tempArchive,
} from "../testdata/registry/archive_fixtures.ts";
import { tarBytes } from "../testdata/registry/tar_writer.ts";

Deno.test("registry server: serves on loopback and is reachable by ref()", async () => {
  const layer = fakeLayer("served", 3 << 20);
  const { bytes, images } = legacyArchive([{ repoTags: ["agent:local"], layers: [layer] }]);
  await using tmp = await tempArchive(bytes);
  await using reg = await serveRegistry({
    archives: [{ path: tmp.path, refs: { "bottle/agent:abc123": "agent:local" } }],
  });
  assert.match(reg.address, /^127\.0\.0\.1:\d+$/);
  assert.equal(reg.hostname, "127.0.0.1");
  assert.equal(reg.ref("bottle/agent", "abc123"), `${reg.address}/bottle/agent:abc123`);

  const base = `http://${reg.address}/v2`;
  const ping = await fetch(`${base}/`);
  assert.equal(ping.headers.get("Docker-Distribution-API-Version"), "registry/2.0");
  await ping.body?.cancel();
  const manifest = await fetch(`${base}/bottle/agent/manifests/abc123`);
  assert.equal(manifest.headers.get("Content-Type"), DOCKER_MANIFEST_V2);
  const json = await manifest.json();
  assert.equal(json.layers[0].digest, images[0]!.layerDigests[0]);

  const head = await fetch(`${base}/bottle/agent/blobs/${sha256(layer)}`, { method: "HEAD" });
  assert.equal(head.headers.get("Content-Length"), String(layer.length), "HEAD keeps the length");
  const blob = await fetch(`${base}/bottle/agent/blobs/${sha256(layer)}`);
  assert.equal(blob.headers.get("Content-Length"), String(layer.length));
  assert.equal(sha256(await blob.bytes()), sha256(layer));
});

Deno.test("registry server: without refs every image is served under its own tags", async () => {
  const { bytes } = ociArchive([
    {
      names: ["docker.io/library/app:1", "docker.io/team/tool:2", "localhost:5000/elsewhere:3"],
      layers: [fakeLayer("a")],
    },
  ]);
  await using tmp = await tempArchive(bytes);
  await using reg = await serveRegistry({ archives: [{ path: tmp.path }] });
  for (const path of ["app/manifests/1", "team/tool/manifests/2"]) {
    const res = await fetch(`http://${reg.address}/v2/${path}`);
    assert.equal(res.status, 200, path);
    await res.body?.cancel();
  }
  const catalog = await fetch(`http://${reg.address}/v2/_catalog`);
  assert.deepEqual(await catalog.json(), { repositories: ["app", "team/tool"] });
});

Deno.test("registry server: dispose stops the server and closes the archive", async () => {
  const { bytes } = legacyArchive([{ repoTags: ["a:1"], layers: [fakeLayer("x")] }]);
  await using tmp = await tempArchive(bytes);
  const reg = await serveRegistry({ archives: [{ path: tmp.path, refs: { "a:1": "" } }] });
  const [archive] = reg.archives;
  await reg[Symbol.asyncDispose]();
  await reg.close(); // idempotent
  await assert.rejects(fetch(`http://${reg.address}/v2/`));
  // Manifests stay cached in memory; reading any blob bytes must fail.
  const blob = await archive!.image().blob(sha256(fakeLayer("x")));
  await assert.rejects(new Response(blob!.stream()).bytes(), /is closed/);
});

Deno.test("registry server: dispose cuts off a download that never finishes", async () => {
  const layer = fakeLayer("slow", 8 << 20);
  const { bytes } = legacyArchive([{ repoTags: ["a:1"], layers: [layer] }]);
  await using tmp = await tempArchive(bytes);
  const reg = await serveRegistry({
    archives: [{ path: tmp.path, refs: { "a:1": "" } }],
  });
  const res = await fetch(`http://${reg.address}/v2/a/blobs/${sha256(layer)}`);
  const reader = res.body!.getReader();
  await reader.read(); // started, then stalled by never reading on
  const started = performance.now();
  await reg.close();
  assert.ok(performance.now() - started < 5000, "dispose did not hang");
  await reader.read().then(() => reader.cancel()).catch(() => {});
});

Deno.test("registry server: a failing archive closes the ones already opened", async () => {
  const { bytes } = legacyArchive([{ repoTags: ["a:1"], layers: [fakeLayer("x")] }]);
  await using good = await tempArchive(bytes);
  await using bad = await tempArchive(tarBytes([{ name: "x", data: "y" }]));
  // The test sanitizer fails this test if the first archive's file stays open.
  await assert.rejects(
    serveRegistry({ archives: [{ path: good.path }, { path: bad.path }] }),
    /neither "manifest.json" nor "oci-layout"/,
  );
});

Deno.test("registry server: an inconsistent legacy archive fails before listening", async () => {
  const config = new TextEncoder().encode(JSON.stringify({ rootfs: { diff_ids: [sha256("no")] } }));
  const { bytes } = legacyArchive([{ repoTags: ["a:1"], layers: [fakeLayer("x")], config }]);
  await using tmp = await tempArchive(bytes);
  await assert.rejects(serveRegistry({ archives: [{ path: tmp.path }] }), /is inconsistent/);
});

Deno.test("registry server: clear errors for unknown images and duplicate refs", async () => {
  const { bytes } = legacyArchive([{ repoTags: ["a:1"], layers: [fakeLayer("x")] }]);
  await using tmp = await tempArchive(bytes);
  await assert.rejects(
    serveRegistry({ archives: [{ path: tmp.path, refs: { "b:1": "nope:2" } }] }),
    /has no image "nope:2": it holds "a:1"/,
  );
  await assert.rejects(
    serveRegistry({ archives: [{ path: tmp.path }, { path: tmp.path }] }),
    /Registry reference "a:1" is given twice/,
  );
  await assert.rejects(serveRegistry({}), /no images/);
});
