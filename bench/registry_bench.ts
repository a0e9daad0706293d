/**
 * "Image in the engine -> image pulled by a registry client", two ways, in
 * one run:
 *   (a) bottle's in-process registry: `docker save` to a temp file, serve it,
 *       `skopeo copy docker://127.0.0.1:PORT/... dir:DIR`;
 *   (b) what a user would otherwise run: a registry 2.8 process (Debian's
 *       `docker-registry`) on loopback, `docker tag` + `docker push`, then the
 *       same skopeo copy.
 * Then the blob throughput of the largest layer through the registry (HTTP
 * GET by curl, median of 3 after a warm-up) against reading the same bytes
 * from the archive file, with docker-registry's GET of its layer for scale.
 *
 * Env: BENCH_IMAGE_MB (default 300) size of the random layer; BENCH_RUNS
 * (default 1) repetitions of each pipeline, the median is reported.
 * Needs docker, skopeo, curl and docker-registry (apt-get install docker-registry).
 */
import { run, spawn } from "../src/proc/runner.ts";
import { ArchiveFile } from "../src/registry/archive_file.ts";
import { parseSaveManifest } from "../src/registry/legacy_image.ts";
import { serveRegistry } from "../src/registry/registry_server.ts";
import { indexTar } from "../src/registry/tar_index.ts";

const IMAGE_MB = Number(Deno.env.get("BENCH_IMAGE_MB") ?? "300");
const RUNS = Number(Deno.env.get("BENCH_RUNS") ?? "1");
const THROUGHPUT_RUNS = 3;
const TIMEOUT_MS = 15 * 60_000;
const LABEL = "bottle.bench=registry";

async function sh(argv: string[]): Promise<string> {
  return (await run(argv, { timeoutMs: TIMEOUT_MS })).stdout.trim();
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await fn();
  return [value, (performance.now() - start) / 1000];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const s = (seconds: number) => `${seconds.toFixed(2)} s`;

async function tempDir(stack: AsyncDisposableStack, prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  stack.defer(() => Deno.remove(dir, { recursive: true }));
  return dir;
}

/** FROM scratch: a random layer of IMAGE_MB plus two small ones. */
async function buildImage(stack: AsyncDisposableStack, name: string): Promise<void> {
  const dir = await tempDir(stack, "bottle-bench-build-");
  using file = await Deno.open(`${dir}/random.bin`, { write: true, create: true });
  const chunk = new Uint8Array(1 << 20);
  for (let mb = 0; mb < IMAGE_MB; mb++) {
    for (let i = 0; i < chunk.length; i += 65536) {
      crypto.getRandomValues(chunk.subarray(i, i + 65536));
    }
    let written = 0;
    while (written < chunk.length) written += await file.write(chunk.subarray(written));
  }
  await Deno.writeTextFile(`${dir}/a.txt`, `${name}\n`);
  await Deno.writeTextFile(`${dir}/b.txt`, "second small layer\n");
  await Deno.writeTextFile(
    `${dir}/Dockerfile`,
    "FROM scratch\nCOPY a.txt /a.txt\nCOPY random.bin /data/random.bin\nCOPY b.txt /b.txt\n",
  );
  stack.defer(async () => {
    await run(["docker", "image", "rm", "-f", name], { check: false });
  });
  await sh(["docker", "build", "-q", "--label", LABEL, "-t", name, dir]);
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function waitForRegistry(address: string, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (exited()) throw new Error("docker-registry exited before answering");
    try {
      const res = await fetch(`http://${address}/v2/`);
      await res.body?.cancel();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not answer on "${address}" within 30 s`);
}

interface InProcess {
  total: number;
  save: number;
  serve: number;
  copy: number;
}

async function inProcess(image: string, keepArchive?: string): Promise<InProcess> {
  await using stack = new AsyncDisposableStack();
  const work = await tempDir(stack, "bottle-bench-a-");
  const archive = keepArchive ?? `${work}/image.tar`;
  const start = performance.now();
  const [, save] = await timed(() => sh(["docker", "save", "-o", archive, image]));
  const [reg, serve] = await timed(() =>
    serveRegistry({ archives: [{ path: archive, refs: { "bench/image:v1": image } }] })
  );
  stack.use(reg);
  const [, copy] = await timed(() =>
    sh([
      "skopeo",
      "copy",
      "--quiet",
      "--src-tls-verify=false",
      `docker://${reg.ref("bench/image", "v1")}`,
      `dir:${work}/pulled`,
    ])
  );
  return { total: (performance.now() - start) / 1000, save, serve, copy };
}

interface RegistryPush {
  total: number;
  start: number;
  push: number;
  copy: number;
  /** MB/s of its largest (gzip) layer by HTTP GET, for comparison with ours. */
  blobMBps: number;
}

async function registryAndPush(image: string): Promise<RegistryPush> {
  await using stack = new AsyncDisposableStack();
  const work = await tempDir(stack, "bottle-bench-b-");
  const port = freePort();
  const address = `127.0.0.1:${port}`;
  await Deno.writeTextFile(
    `${work}/config.yml`,
    [
      "version: 0.1",
      "log:",
      "  level: error",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${work}/storage`,
      "http:",
      `  addr: ${address}`,
      "",
    ].join("\n"),
  );
  const remote = `${address}/bench/image:v1`;
  const begin = performance.now();
  const [, start] = await timed(async () => {
    const proc = spawn(["docker-registry", "serve", `${work}/config.yml`], {
      stdout: "null",
      stderr: "null",
    });
    let exited = false;
    proc.status.then(() => (exited = true));
    stack.defer(async () => {
      proc.kill("SIGTERM");
      await proc.status;
    });
    await waitForRegistry(address, () => exited);
  });
  stack.defer(async () => {
    await run(["docker", "image", "rm", remote], { check: false });
  });
  const [, push] = await timed(async () => {
    await sh(["docker", "tag", image, remote]);
    await sh(["docker", "push", "-q", remote]);
  });
  const [, copy] = await timed(() =>
    sh([
      "skopeo",
      "copy",
      "--quiet",
      "--src-tls-verify=false",
      `docker://${remote}`,
      `dir:${work}/pulled`,
    ])
  );
  const total = (performance.now() - begin) / 1000;
  const manifest = await (await fetch(`http://${address}/v2/bench/image/manifests/v1`, {
    headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json" },
  })).json() as { layers: { digest: string; size: number }[] };
  const largest = manifest.layers.reduce((x, y) => (y.size > x.size ? y : x));
  const blobMBps = await httpMBps(
    `http://${address}/v2/bench/image/blobs/${largest.digest}`,
    largest.size,
  );
  return { total, start, push, copy, blobMBps };
}

/** Median MB/s of a curl GET of `url` after one warm-up GET. */
async function httpMBps(url: string, size: number): Promise<number> {
  const rates: number[] = [];
  for (let i = 0; i <= THROUGHPUT_RUNS; i++) {
    const out = await sh([
      "curl",
      "-sf",
      "-o",
      "/dev/null",
      "-w",
      "%{size_download} %{time_total}",
      url,
    ]);
    const [bytes, seconds] = out.split(" ").map(Number);
    if (bytes !== size) throw new Error(`curl got ${bytes} bytes from "${url}", expected ${size}`);
    if (i > 0) rates.push(size / seconds! / 1e6);
  }
  return median(rates);
}

/** The largest layer of a legacy archive: where it sits, how big, and its digest. */
async function largestLayer(archivePath: string) {
  using file = await ArchiveFile.open(archivePath);
  const index = await indexTar(file);
  const manifestEntry = index.file("manifest.json");
  if (!manifestEntry) throw new Error(`No manifest.json in "${archivePath}"`);
  const manifest = parseSaveManifest(
    JSON.parse(
      new TextDecoder().decode(
        await file.readExact(manifestEntry.offset, manifestEntry.size, "manifest.json"),
      ),
    ),
    archivePath,
  );
  const layers = manifest[0]!.layers.map((l) => index.file(l)!);
  const largest = layers.reduce((a, b) => (b.size > a.size ? b : a));
  return {
    offset: largest.offset,
    size: largest.size,
    digest: await file.sha256(largest.offset, largest.size, largest.name),
  };
}

/** Plain sequential read of the byte range: the floor any server of this file sits on. */
async function readFromDisk(path: string, offset: number, size: number): Promise<number> {
  using file = await Deno.open(path);
  await file.seek(offset, Deno.SeekMode.Start);
  const buf = new Uint8Array(1 << 20);
  const start = performance.now();
  let left = size;
  while (left > 0) {
    const n = await file.read(buf.subarray(0, Math.min(buf.length, left)));
    if (n === null) throw new Error("archive ended early");
    left -= n;
  }
  return (performance.now() - start) / 1000;
}

async function throughput(image: string, dockerRegistryMBps: number): Promise<void> {
  await using stack = new AsyncDisposableStack();
  const work = await tempDir(stack, "bottle-bench-blob-");
  const archive = `${work}/image.tar`;
  await sh(["docker", "save", "-o", archive, image]);
  const layer = await largestLayer(archive);
  const reg = stack.use(
    await serveRegistry({ archives: [{ path: archive, refs: { "bench/image:v1": image } }] }),
  );
  const http = await httpMBps(
    `http://${reg.address}/v2/bench/image/blobs/${layer.digest}`,
    layer.size,
  );
  await readFromDisk(archive, layer.offset, layer.size); // warm-up, as for HTTP
  const disk: number[] = [];
  for (let i = 0; i < THROUGHPUT_RUNS; i++) {
    disk.push(layer.size / (await readFromDisk(archive, layer.offset, layer.size)) / 1e6);
  }
  const d = median(disk);
  console.log(
    `blob: ${(layer.size / 1e6).toFixed(0)} MB layer, registry HTTP GET ${
      http.toFixed(0)
    } MB/s, archive file read ${d.toFixed(0)} MB/s, ratio ${(http / d).toFixed(2)}` +
      ` (docker-registry HTTP GET of its gzip layer ${dockerRegistryMBps.toFixed(0)} MB/s)`,
  );
}

async function main(): Promise<void> {
  for (const tool of [["docker", "version"], ["skopeo", "--version"], ["curl", "--version"]]) {
    await sh(tool);
  }
  await run(["docker-registry", "--version"]).catch((err) => {
    throw new Error(
      `Cannot run "docker-registry" (apt-get install docker-registry): ${err.message}`,
    );
  });
  await using stack = new AsyncDisposableStack();
  const image = `bottle-bench-registry:${crypto.randomUUID().slice(0, 8)}`;
  console.log(`building ${image} with a ${IMAGE_MB} MB random layer`);
  await buildImage(stack, image);

  const a: InProcess[] = [];
  const b: RegistryPush[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Alternate which goes first so neither always gets the warmer cache.
    if (i % 2 === 0) {
      a.push(await inProcess(image));
      b.push(await registryAndPush(image));
    } else {
      b.push(await registryAndPush(image));
      a.push(await inProcess(image));
    }
  }
  const ta = median(a.map((r) => r.total));
  const tb = median(b.map((r) => r.total));
  console.log(
    `registry: in-process ${s(ta)}, docker-registry+push ${s(tb)}, ratio ${(tb / ta).toFixed(1)}x` +
      ` (image ${IMAGE_MB} MB, runs ${RUNS}, median)`,
  );
  console.log(
    `  in-process: docker save ${s(median(a.map((r) => r.save)))}, serve (index+hash) ${
      s(median(a.map((r) => r.serve)))
    }, skopeo copy ${s(median(a.map((r) => r.copy)))}`,
  );
  console.log(
    `  docker-registry: start ${s(median(b.map((r) => r.start)))}, tag+push ${
      s(median(b.map((r) => r.push)))
    }, skopeo copy ${s(median(b.map((r) => r.copy)))}`,
  );
  await throughput(image, median(b.map((r) => r.blobMBps)));
}

if (import.meta.main) await main();
