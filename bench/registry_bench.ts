/**
 * "Image in the engine -> image pulled by a registry client", two ways, in
 * one run:
 *   (a) bottle's in-process registry: `docker save` to a temp file, serve it,
 *       `skopeo copy docker://127.0.0.1:PORT/... dir:DIR`;
 *   (b) what a user would otherwise run: a registry 2.8 process (Debian's
 *       `docker-registry`) on loopback, `docker tag` + `docker push`, then the
 *       same skopeo copy.
 * Then the blob throughput of the largest layer (see `throughput`): the
 * registry's HTTP GET by two clients (curl, and Deno's fetch in its own
 * process), its previous JS-stream path, a zero-copy sendfile server of the
 * same bytes as the ceiling of HTTP over loopback here, and reading the bytes
 * from the archive with a warm and with a cold page cache, with the ratios of
 * the registry against each. Reading from a warm page cache is a memory copy:
 * no socket server reaches 0.8x of it on loopback, the sendfile reference
 * included, so the cold read (and the sendfile reference) say more about
 * whether serving keeps up with the disk.
 *
 * Env: BENCH_IMAGE_MB (default 300) size of the random layer; BENCH_RUNS
 * (default 1) repetitions of each pipeline, the median is reported;
 * BENCH_THROUGHPUT_RUNS (default 5) rounds of blob throughput;
 * BENCH_THROUGHPUT_ONLY=1 skips the pipelines.
 * Needs docker, skopeo, curl, GNU dd and docker-registry (apt-get install
 * docker-registry); python3 for the sendfile reference and util-linux
 * fincore to confirm eviction (each is skipped without them).
 */
import process from "node:process";
import { run, spawn } from "../src/proc/runner.ts";
import { ArchiveFile } from "../src/registry/archive_file.ts";
import { DockerArchive } from "../src/registry/docker_archive.ts";
import { parseSaveManifest } from "../src/registry/legacy_image.ts";
import { createRegistryHandler } from "../src/registry/registry_handler.ts";
import { serveRegistry } from "../src/registry/registry_server.ts";
import { indexTar } from "../src/registry/tar_index.ts";

const IMAGE_MB = Number(Deno.env.get("BENCH_IMAGE_MB") ?? "300");
const RUNS = Number(Deno.env.get("BENCH_RUNS") ?? "1");
const THROUGHPUT_RUNS = Number(Deno.env.get("BENCH_THROUGHPUT_RUNS") ?? "5");
const THROUGHPUT_ONLY = Deno.env.get("BENCH_THROUGHPUT_ONLY") === "1";
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
    const rate = await curlMBps(url, size);
    if (i > 0) rates.push(rate);
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

/** Plain sequential read of the byte range through a 1 MiB buffer: seconds taken. */
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

/**
 * Drops the file's pages from this kernel's page cache (GNU dd: posix_fadvise
 * DONTNEED; no root needed, other files stay cached), so the next read comes
 * from the disk. In a VM the host may still cache the disk image.
 */
async function evict(path: string): Promise<void> {
  await sh(["sync", path]);
  await sh(["dd", `if=${path}`, "iflag=nocache", "count=0", "status=none"]);
}

/** Bytes of `path` still in the page cache (util-linux fincore), or undefined without fincore. */
async function residentBytes(path: string): Promise<number | undefined> {
  const out = await run(["fincore", "--bytes", "--noheadings", "--output", "RES", path], {
    check: false,
  }).catch(() => undefined);
  return out?.code === 0 ? Number(out.stdout.trim()) : undefined;
}

/** One GET of `url` by curl over HTTP/1.1 into /dev/null, in MB/s. */
async function curlMBps(url: string, size: number): Promise<number> {
  const out = await sh([
    "curl",
    "-sf",
    "--http1.1",
    "-o",
    "/dev/null",
    "-w",
    "%{size_download} %{time_total}",
    url,
  ]);
  const [bytes, seconds] = out.split(" ").map(Number);
  if (bytes !== size) throw new Error(`curl got ${bytes} bytes from "${url}", expected ${size}`);
  return size / seconds! / 1e6;
}

/** A second client: Deno's fetch reading the body and dropping it, in a process of its own. */
const FETCH_CLIENT = `
const start = performance.now();
const res = await fetch(Deno.args[0]);
if (!res.ok) throw new Error("HTTP " + res.status);
const reader = res.body.getReader();
let bytes = 0;
for (;;) {
  const { done, value } = await reader.read();
  if (done) break;
  bytes += value.length;
}
console.log(bytes, (performance.now() - start) / 1000);
`;

async function denoFetchMBps(url: string, size: number): Promise<number> {
  const out = await sh([Deno.execPath(), "eval", FETCH_CLIENT, url]);
  const [bytes, seconds] = out.split(" ").map(Number);
  if (bytes !== size) throw new Error(`fetch got ${bytes} bytes from "${url}", expected ${size}`);
  return size / seconds! / 1e6;
}

/**
 * The reference for what HTTP over loopback to these clients can reach here:
 * one GET answered by `os.sendfile` from the same archive range (zero copy, no
 * parsing beyond the request head).
 */
const SENDFILE_SERVER = `
import os, socket, sys, threading
path, offset, size, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def handle(conn):
    with conn:
        head = b""
        while b"\\r\\n\\r\\n" not in head:
            data = conn.recv(65536)
            if not data:
                return
            head += data
        conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/octet-stream\\r\\n"
                     b"Connection: close\\r\\nContent-Length: %d\\r\\n\\r\\n" % size)
        fd = os.open(path, os.O_RDONLY)
        try:
            sent = 0
            while sent < size:
                sent += os.sendfile(conn.fileno(), fd, offset + sent, size - sent)
        finally:
            os.close(fd)
server = socket.socket()
server.bind(("127.0.0.1", port))
server.listen(16)
while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
`;

/** Starts the sendfile reference server: its URL, or why it is skipped (no python3). */
async function sendfileReference(
  stack: AsyncDisposableStack,
  work: string,
  archive: string,
  layer: { offset: number; size: number },
): Promise<string | { skipped: string }> {
  const ok = await run(["python3", "--version"], { check: false }).catch(() => undefined);
  if (ok?.code !== 0) return { skipped: "no python3" };
  const script = `${work}/sendfile_server.py`;
  await Deno.writeTextFile(script, SENDFILE_SERVER);
  const port = freePort();
  const proc = spawn(
    ["python3", script, archive, String(layer.offset), String(layer.size), String(port)],
    { stdout: "null", stderr: "null" },
  );
  let exited = false;
  proc.status.then(() => (exited = true));
  stack.defer(async () => {
    proc.kill("SIGTERM");
    await proc.status;
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) throw new Error("The sendfile reference server exited before listening");
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return `http://127.0.0.1:${port}/`;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** MB/s samples of one way of getting the layer's bytes, with this process's CPU time per GB. */
interface Probe {
  label: string;
  run: () => Promise<number>;
  /** Whether this process serves it, so its CPU time is the server's. */
  serverHere?: boolean;
  mbps: number[];
  cpuSecondsPerGB: number[];
}

function probe(label: string, run: () => Promise<number>, serverHere = false): Probe {
  return { label, run, serverHere, mbps: [], cpuSecondsPerGB: [] };
}

/**
 * Blob throughput of the largest layer, every way measured once per round,
 * rounds interleaved (each starting one probe later) so that load from
 * whatever else runs on the machine spreads over all of them; medians
 * reported. Both registry paths are served by this process: `serveRegistry`
 * (a bounded JS stream: native file tails are off, since Deno.serve also
 * speaks h2c and over HTTP/2 a tail ran past the blob), and the same handler
 * served by a plain Deno.serve. The "native file tail" labels are kept so
 * earlier runs compare; both now measure the stream.
 */
async function throughput(image: string, dockerRegistryMBps: number | undefined): Promise<void> {
  await using stack = new AsyncDisposableStack();
  const work = await tempDir(stack, "bottle-bench-blob-");
  const archive = `${work}/image.tar`;
  await sh(["docker", "save", "-o", archive, image]);
  const layer = await largestLayer(archive);
  const mb = layer.size / 1e6;
  const reg = stack.use(
    await serveRegistry({ archives: [{ path: archive, refs: { "bench/image:v1": image } }] }),
  );
  const blobPath = `/v2/bench/image/blobs/${layer.digest}`;
  const native = `http://${reg.address}${blobPath}`;

  const jsArchive = stack.use(await DockerArchive.open(archive));
  const jsServer = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createRegistryHandler({ "bench/image:v1": jsArchive.image(image) }),
  );
  stack.defer(() => jsServer.shutdown());
  const jsStream = `http://127.0.0.1:${jsServer.addr.port}${blobPath}`;
  const reference = await sendfileReference(stack, work, archive, layer);

  let evictionNote = "";
  const coldRead = async () => {
    await evict(archive);
    const resident = await residentBytes(archive);
    if (resident !== undefined && resident > layer.size / 20) {
      evictionNote = ` (eviction incomplete: ${(resident / 1e6).toFixed(0)} MB stayed cached)`;
    }
    return mb / (await readFromDisk(archive, layer.offset, layer.size));
  };
  const probes = [
    probe("registry, native file tail, curl", () => curlMBps(native, layer.size), true),
    probe("registry, native file tail, deno fetch", () => denoFetchMBps(native, layer.size), true),
    probe("JS stream (before; now the fallback), curl", () => curlMBps(jsStream, layer.size), true),
    probe(
      "JS stream (before; now the fallback), deno fetch",
      () => denoFetchMBps(jsStream, layer.size),
      true,
    ),
    ...(typeof reference === "string"
      ? [probe("reference: python3 sendfile server, curl", () => curlMBps(reference, layer.size))]
      : []),
    probe(
      "archive read, warm page cache",
      async () => mb / (await readFromDisk(archive, layer.offset, layer.size)),
    ),
    probe("archive read, cold (evicted from page cache)", coldRead),
    probe("registry after eviction (cold), curl", async () => {
      await evict(archive);
      return await curlMBps(native, layer.size);
    }, true),
  ];

  // Warm-up: JIT, connection setup, page cache.
  await curlMBps(native, layer.size);
  await curlMBps(jsStream, layer.size);
  await readFromDisk(archive, layer.offset, layer.size);
  const loadBefore = Deno.loadavg()[0]!;
  for (let round = 0; round < THROUGHPUT_RUNS; round++) {
    for (let i = 0; i < probes.length; i++) {
      const p = probes[(i + round) % probes.length]!;
      const cpu = process.cpuUsage();
      p.mbps.push(await p.run());
      const used = process.cpuUsage(cpu);
      p.cpuSecondsPerGB.push((used.user + used.system) / 1e6 / (layer.size / 1e9));
    }
  }
  const loadAfter = Deno.loadavg()[0]!;

  const m = (label: string) => {
    const found = probes.find((p) => p.label === label);
    return found ? median(found.mbps) : NaN;
  };
  const width = Math.max(...probes.map((p) => p.label.length));
  console.log(
    `blob: ${mb.toFixed(0)} MB layer, ${THROUGHPUT_RUNS} interleaved rounds, medians` +
      ` (CPUs ${navigator.hardwareConcurrency}, 1-min load average ${loadBefore.toFixed(1)}` +
      ` before, ${loadAfter.toFixed(1)} after)`,
  );
  for (const p of probes) {
    const cpu = p.serverHere ? `, server CPU ${median(p.cpuSecondsPerGB).toFixed(2)} s/GB` : "";
    console.log(
      `  ${p.label.padEnd(width)}  ${median(p.mbps).toFixed(0).padStart(5)} MB/s` +
        `  [${p.mbps.map((x) => x.toFixed(0)).join(" ")}]${cpu}`,
    );
  }
  if (typeof reference !== "string") {
    console.log(`  reference sendfile server skipped: ${reference.skipped}`);
  }
  if (dockerRegistryMBps !== undefined) {
    console.log(
      `  docker-registry GET of its gzip layer (curl, above)  ${
        dockerRegistryMBps.toFixed(0)
      } MB/s`,
    );
  }
  if (evictionNote) console.log(`  note: cold reads${evictionNote}`);
  const registry = m("registry, native file tail, curl");
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
  console.log(
    `blob ratios (registry GET by curl over archive read): warm read ${
      ratio(registry, m("archive read, warm page cache"))
    }, cold read ${ratio(registry, m("archive read, cold (evicted from page cache)"))}` +
      `; both cold (GET after eviction / cold read) ${
        ratio(
          m("registry after eviction (cold), curl"),
          m("archive read, cold (evicted from page cache)"),
        )
      }`,
  );
  console.log(
    `blob ratios (registry GET by curl over other servers of the same bytes): sendfile reference ${
      typeof reference === "string"
        ? ratio(registry, m("reference: python3 sendfile server, curl"))
        : "n/a"
    }, JS stream (before) ${ratio(registry, m("JS stream (before; now the fallback), curl"))}`,
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

  if (THROUGHPUT_ONLY) {
    await throughput(image, undefined);
    return;
  }
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
