import assert from "node:assert/strict";
import { serveRegistry } from "../../src/registry/registry_server.ts";
import { DOCKER_MANIFEST_V2 } from "../../src/registry/media_types.ts";
import {
  fakeLayer,
  legacyArchive,
  noiseLayer,
  ociArchive,
  sha256,
  tempArchive,
} from "../testdata/registry/archive_fixtures.ts";
import { tarBytes } from "../testdata/registry/tar_writer.ts";
import { fdsOn } from "../helpers/open_fds.ts";

interface RawResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

/** Splits what an HTTP/1.1 server sent into responses framed by Content-Length; no bytes may trail. */
function splitResponses(bytes: Uint8Array): RawResponse[] {
  const responses: RawResponse[] = [];
  let at = 0;
  while (at < bytes.length) {
    let end = at;
    while (
      end + 3 < bytes.length &&
      !(bytes[end] === 13 && bytes[end + 1] === 10 && bytes[end + 2] === 13 &&
        bytes[end + 3] === 10)
    ) {
      end++;
    }
    assert.ok(end + 3 < bytes.length, `no complete response head at byte ${at}`);
    const [statusLine = "", ...lines] = new TextDecoder().decode(bytes.subarray(at, end)).split(
      "\r\n",
    );
    const headers = new Headers(lines.map((l) => {
      const colon = l.indexOf(":");
      return [l.slice(0, colon).trim(), l.slice(colon + 1).trim()] as [string, string];
    }));
    const length = Number(headers.get("Content-Length"));
    const start = end + 4;
    assert.ok(start + length <= bytes.length, `response at byte ${at} is cut short`);
    responses.push({
      status: Number(statusLine.split(" ")[1]),
      headers,
      body: bytes.subarray(start, start + length),
    });
    at = start + length;
  }
  return responses;
}

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

Deno.test("registry server: large blobs over HTTP/1.1 end at Content-Length, pipelined on one connection", async () => {
  const big = noiseLayer((3 << 20) + 5, 0x9e3779b9);
  const small = fakeLayer("after", 3000);
  const { bytes } = legacyArchive([{ repoTags: ["a:1"], layers: [big, small] }]);
  await using tmp = await tempArchive(bytes);
  await using reg = await serveRegistry({ archives: [{ path: tmp.path }] });
  const realPath = await Deno.realPath(tmp.path);
  const request = (digest: string, extra = "") =>
    `GET /v2/a/blobs/${digest} HTTP/1.1\r\nHost: ${reg.address}\r\n${extra}\r\n`;
  using conn = await Deno.connect({ hostname: reg.hostname, port: reg.port });
  await conn.write(new TextEncoder().encode(
    request(sha256(big)) +
      request(sha256(big), "Range: bytes=1048576-\r\n") +
      request(sha256(small), "Connection: close\r\n"),
  ));
  const [whole, ranged, last, ...extra] = splitResponses(await new Response(conn.readable).bytes());
  assert.equal(extra.length, 0);
  assert.equal(whole!.status, 200);
  assert.equal(sha256(whole!.body), sha256(big));
  assert.equal(ranged!.status, 206);
  assert.equal(sha256(ranged!.body), sha256(big.subarray(1 << 20)));
  assert.deepEqual(last!.body, small);
  if (Deno.build.os === "linux") {
    // Each tail's own handle is closed once sent: only the archive's stays.
    const deadline = Date.now() + 5000;
    while (fdsOn(realPath) > 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(fdsOn(realPath), 1);
  }
});

Deno.test("registry server: HTTP/2 clients get exact blob bodies", async () => {
  const big = noiseLayer((2 << 20) + 7, 0x9e3779b9);
  const { bytes } = legacyArchive([{ repoTags: ["a:1"], layers: [big, fakeLayer("after")] }]);
  await using tmp = await tempArchive(bytes);
  await using reg = await serveRegistry({ archives: [{ path: tmp.path }] });
  using client = Deno.createHttpClient({ http1: false, http2: true });
  const url = `http://${reg.address}/v2/a/blobs/${sha256(big)}`;
  const whole = await fetch(url, { client });
  assert.equal(sha256(await whole.bytes()), sha256(big));
  const ranged = await fetch(url, { client, headers: { Range: "bytes=5-" } });
  assert.equal(ranged.status, 206);
  assert.equal(sha256(await ranged.bytes()), sha256(big.subarray(5)));
});

Deno.test("registry server: blobs come from the indexed file after its path is replaced", async () => {
  const big = noiseLayer(2 << 20, 0x9e3779b9);
  const { bytes } = legacyArchive([{ repoTags: ["a:1"], layers: [big] }]);
  await using tmp = await tempArchive(bytes);
  await using other = await tempArchive(new Uint8Array(bytes.length).fill(7));
  await using reg = await serveRegistry({ archives: [{ path: tmp.path }] });
  await Deno.rename(other.path, tmp.path);
  const res = await fetch(`http://${reg.address}/v2/a/blobs/${sha256(big)}`);
  assert.equal(sha256(await res.bytes()), sha256(big));
});
