/**
 * Egress benchmark, all on loopback, one run, every path side by side:
 *
 *   direct                    curl -> upstream
 *   squid                     curl -> squid (CONNECT) -> upstream
 *   pipelock stand-in         curl -> stand-in (CONNECT) -> upstream
 *   egress tunnel             curl -> egress (CONNECT, untouched) -> stand-in -> upstream
 *   egress routed (MITM)      curl -> egress (TLS terminated, credential injected)
 *                                  -> stand-in -> upstream (TLS again)
 *
 * Latency: 500 sequential keep-alive GETs on one connection (plus 20 warm-up),
 * each timed by curl (`time_total`). Throughput: a 100 MB download. Five
 * rounds, paths interleaved; the figures are medians over rounds.
 * The upstream is a bare HTTP/1.1-over-TLS server in its own process, so the
 * proxies, not the origin, are what is measured. curl speaks HTTP/1.1 on all
 * paths (egress offers nothing else on routed hosts).
 *
 *   deno run -A bench/egress_bench.ts            # needs curl; squid if installed
 */
import { BufferedWire } from "../src/bundle/egress/buffered.ts";
import { MAX_HEAD_BYTES, parseRequestHead } from "../src/bundle/egress/http1.ts";
import { DenoWire } from "../src/bundle/egress/wire.ts";
import { run, spawn, type Spawned } from "../src/proc/runner.ts";
import { loadCa, mintCa } from "../src/tls/ca.ts";
import { mintLeaf } from "../src/tls/leaf.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SMALL_REQUESTS = 500;
const WARMUP = 20;
const DOWNLOAD_BYTES = 100 * 1024 * 1024;
const ROUNDS = 5;

/** `--upstream DIR`: the origin server, run as a child so it has its own event loop. */
async function serveUpstream(dir: string): Promise<never> {
  const minted = await mintCa({ commonName: "bench upstream CA" });
  const leaf = await mintLeaf(await loadCa(minted.certPem, minted.keyPem), [
    "api.test.local",
    "open.test.local",
  ]);
  await Deno.writeTextFile(`${dir}/upstream-ca.pem`, minted.certPem);
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: leaf.certPem,
    key: leaf.keyPem,
    alpnProtocols: ["http/1.1"],
  });
  console.error(`upstream listening on 127.0.0.1:${(listener.addr as Deno.NetAddr).port}`);
  const block = new Uint8Array(256 * 1024).fill(0x61);
  const enc = new TextEncoder();
  for await (const conn of listener) {
    (async () => {
      const wire = new BufferedWire(new DenoWire(conn));
      for (;;) {
        const head = await wire.readHead(MAX_HEAD_BYTES);
        if (head === null) break;
        const req = parseRequestHead(head);
        const size = Number(/[?&]n=(\d+)/.exec(req.target)?.[1] ?? "2");
        const resHead = enc.encode(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`);
        // Head and first block in one write: a TLS listener has Nagle on, and
        // a lone small head would wait out the peer's delayed ACK (~40 ms).
        const first = Math.min(size, block.length);
        const out = new Uint8Array(resHead.length + first);
        out.set(resHead);
        out.set(block.subarray(0, first), resHead.length);
        await wire.write(out);
        for (let left = size - first; left > 0; left -= block.length) {
          await wire.write(block.subarray(0, Math.min(left, block.length)));
        }
      }
      wire.close();
    })().catch(() => conn.close());
  }
  throw new Error("upstream listener closed");
}

interface Daemon {
  proc: Spawned;
  port: number;
}

async function startDaemon(argv: string[], env: Record<string, string> = {}): Promise<Daemon> {
  const proc = spawn(argv, { env, stdout: "null", stderr: "capture" });
  let text = "";
  const port = Promise.withResolvers<number>();
  (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.process.stderr) {
      text += dec.decode(chunk, { stream: true });
      const m = /listening on [^\s]*:(\d+)/.exec(text);
      if (m) port.resolve(Number(m[1]));
    }
    port.reject(new Error(`${argv.slice(0, 4).join(" ")} exited: ${text}`));
  })().catch(() => {});
  const timer = setTimeout(() => port.reject(new Error(`Timed out starting ${argv[3]}`)), 30_000);
  try {
    return { proc, port: await port.promise };
  } finally {
    clearTimeout(timer);
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Polls until something accepts TCP on `port`. */
async function waitForPort(port: number, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${what} did not open port ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function startSquid(): Promise<{ daemon: Daemon; dir: string } | undefined> {
  const squid = ["/usr/sbin/squid", "/usr/bin/squid"].find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
  if (!squid) return undefined;
  const port = freePort();
  // Its own directory, open to all: squid started as root drops to its
  // cache_effective_user, which must still read its hosts file and write its log.
  const sq = await Deno.makeTempDir({ prefix: "egress-bench-squid-" });
  await Deno.chmod(sq, 0o777);
  await Deno.writeTextFile(`${sq}/hosts`, "127.0.0.1 api.test.local open.test.local\n");
  await Deno.writeTextFile(
    `${sq}/squid.conf`,
    [
      `http_port 127.0.0.1:${port}`,
      "http_access allow localhost",
      "http_access deny all",
      "cache deny all",
      "cache_mem 8 MB",
      "access_log none",
      "cache_store_log none",
      `cache_log ${sq}/cache.log`,
      `pid_filename ${sq}/squid.pid`,
      `coredump_dir ${sq}`,
      `hosts_file ${sq}/hosts`,
      "dns_nameservers 127.0.0.1",
      "shutdown_lifetime 1 seconds",
      "",
    ].join("\n"),
  );
  const proc = spawn([squid, "-N", "-f", `${sq}/squid.conf`], { stdout: "null", stderr: "null" });
  await waitForPort(port, "squid");
  return { daemon: { proc, port }, dir: sq };
}

interface Path {
  name: string;
  host: string;
  args: string[];
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1)))] ?? NaN;
}

/** Runs curl over `urls` on one connection, URLs in a config file (argv stays short). */
async function curlMany(path: Path, urls: string[], write: string): Promise<string[]> {
  const cfg = await Deno.makeTempFile({ prefix: "egress-bench-curl-" });
  try {
    await Deno.writeTextFile(cfg, urls.map((u) => `url = "${u}"\noutput = "/dev/null"\n`).join(""));
    const out = await run(
      ["curl", "-sS", "--http1.1", ...path.args, "-w", write, "--max-time", "300", "-K", cfg],
      { check: false },
    );
    if (out.code !== 0) {
      throw new Error(`${path.name}: curl exited with ${out.code}: ${out.stderr.split("\n")[0]}`);
    }
    return out.stdout.trim().split("\n");
  } finally {
    await Deno.remove(cfg);
  }
}

async function latency(path: Path, port: number): Promise<{ p50: number; p99: number }> {
  const url = `https://${path.host}:${port}/small?n=2`;
  const lines = await curlMany(path, Array(SMALL_REQUESTS + WARMUP).fill(url), "%{time_total}\n");
  const times = lines.map(Number).slice(WARMUP).sort((a, b) => a - b);
  if (times.length !== SMALL_REQUESTS || times.some(isNaN)) {
    throw new Error(`${path.name}: got ${times.length} timings`);
  }
  return { p50: percentile(times, 0.5) * 1000, p99: percentile(times, 0.99) * 1000 };
}

async function throughput(path: Path, port: number): Promise<number> {
  const url = `https://${path.host}:${port}/bytes?n=${DOWNLOAD_BYTES}`;
  const [line] = await curlMany(path, [url], "%{size_download} %{speed_download}");
  const [size, speed] = (line ?? "").split(" ").map(Number);
  if (size !== DOWNLOAD_BYTES) throw new Error(`${path.name}: downloaded ${size} bytes`);
  return (speed ?? 0) / 1e6;
}

/** User + system CPU time of process `pid` in ms, from /proc (Linux); undefined elsewhere. */
function cpuMs(pid: number): number | undefined {
  try {
    const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]?.split(" ") ?? [];
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "egress-bench-" });
  const daemons: Daemon[] = [];
  const cleanupDirs = [dir];
  try {
    const upstream = await startDaemon([
      Deno.execPath(),
      "run",
      "-A",
      import.meta.filename!,
      "--upstream",
      dir,
    ]);
    daemons.push(upstream);
    const upstreamCa = `${dir}/upstream-ca.pem`;
    await Deno.writeTextFile(
      `${dir}/pipelock.yaml`,
      "version: 1\nmode: strict\napi_allowlist: [api.test.local, open.test.local]\n" +
        "forward_proxy:\n  enabled: true\nsentry:\n  enabled: false\n",
    );
    const standin = await startDaemon([
      Deno.execPath(),
      "run",
      "-A",
      `${ROOT}tests/fakes/pipelock_standin.ts`,
      "run",
      "--config",
      `${dir}/pipelock.yaml`,
      "--listen",
      "127.0.0.1:0",
      "--resolve",
      "api.test.local=127.0.0.1",
      "--resolve",
      "open.test.local=127.0.0.1",
    ]);
    daemons.push(standin);
    const ca = await mintCa({ commonName: "bench egress CA" });
    await Deno.writeTextFile(`${dir}/egress-ca.pem`, ca.certPem);
    await Deno.writeTextFile(`${dir}/egress-ca-key.pem`, ca.keyPem, { mode: 0o600 });
    await Deno.writeTextFile(
      `${dir}/egress.json`,
      JSON.stringify({
        bottle: "bench",
        listen: { host: "127.0.0.1", port: 0 },
        upstreamProxy: `http://127.0.0.1:${standin.port}`,
        auditLog: `${dir}/audit.jsonl`,
        caCertFile: `${dir}/egress-ca.pem`,
        caKeyFile: `${dir}/egress-ca-key.pem`,
        upstreamCaFiles: [upstreamCa],
        routes: [{
          host: "api.test.local",
          header: "x-api-key",
          template: "{value}",
          valueEnv: "BENCH_SECRET",
        }],
      }),
    );
    const egress = await startDaemon(
      [
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}src/bundle/egress/main.ts`,
        "--config",
        `${dir}/egress.json`,
      ],
      { BENCH_SECRET: "bench-secret-value" },
    );
    daemons.push(egress);
    const squidRun = await startSquid();
    const squid = squidRun?.daemon;
    if (squidRun) {
      daemons.push(squidRun.daemon);
      cleanupDirs.push(squidRun.dir);
    }

    const via = (port: number) => ["--proxy", `http://127.0.0.1:${port}`];
    const paths: Path[] = [
      {
        name: "direct",
        host: "api.test.local",
        args: ["--cacert", upstreamCa, "--resolve", `api.test.local:${upstream.port}:127.0.0.1`],
      },
      ...(squid
        ? [{
          name: "squid",
          host: "open.test.local",
          args: [...via(squid.port), "--cacert", upstreamCa],
        }]
        : []),
      {
        name: "pipelock stand-in",
        host: "open.test.local",
        args: [...via(standin.port), "--cacert", upstreamCa],
      },
      {
        name: "egress tunnel -> stand-in",
        host: "open.test.local",
        args: [...via(egress.port), "--cacert", upstreamCa],
      },
      {
        name: "egress routed -> stand-in",
        host: "api.test.local",
        args: [...via(egress.port), "--cacert", `${dir}/egress-ca.pem`],
      },
    ];

    console.log(
      `egress bench: loopback, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`,
    );
    if (!squid) console.log("squid: not installed (apt-get install -y squid); skipped");
    const lat = new Map<string, { p50: number; p99: number }>();
    const tput = new Map<string, number>();
    // Rounds interleave the paths, so a burst of load from elsewhere on the
    // machine hits all of them alike; each figure is the median over rounds.
    const latRuns = new Map<string, { p50: number; p99: number }[]>();
    const tputRuns = new Map<string, number[]>();
    const cpuRuns = new Map<string, number[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const p of paths) {
        latRuns.set(p.name, [...(latRuns.get(p.name) ?? []), await latency(p, upstream.port)]);
        const cpu0 = cpuMs(egress.proc.process.pid);
        tputRuns.set(p.name, [...(tputRuns.get(p.name) ?? []), await throughput(p, upstream.port)]);
        const cpu1 = cpuMs(egress.proc.process.pid);
        if (p.name.startsWith("egress") && cpu0 !== undefined && cpu1 !== undefined) {
          cpuRuns.set(p.name, [...(cpuRuns.get(p.name) ?? []), cpu1 - cpu0]);
        }
      }
    }
    for (const p of paths) {
      const runs = latRuns.get(p.name)!;
      lat.set(p.name, { p50: median(runs.map((r) => r.p50)), p99: median(runs.map((r) => r.p99)) });
      tput.set(p.name, median(tputRuns.get(p.name)!));
    }

    const base = lat.get("direct")!;
    const baseT = tput.get("direct")!;
    const squidL = lat.get("squid");
    const squidT = tput.get("squid");
    const w = Math.max(...paths.map((p) => p.name.length));
    console.log(
      `\nlatency, ${SMALL_REQUESTS} sequential keep-alive GETs (2-byte body), ms per request, median of ${ROUNDS} rounds:`,
    );
    for (const p of paths) {
      const l = lat.get(p.name)!;
      const vsSquid = squidL ? `  x${(l.p50 / squidL.p50).toFixed(2)} squid` : "";
      console.log(
        `  ${p.name.padEnd(w)}  p50 ${l.p50.toFixed(3)}  p99 ${l.p99.toFixed(3)}  ` +
          `(p50 x${(l.p50 / base.p50).toFixed(2)} direct${vsSquid})`,
      );
    }
    console.log(
      `\nthroughput, ${DOWNLOAD_BYTES / 1024 / 1024} MB download, median of ${ROUNDS}, MB/s:`,
    );
    for (const p of paths) {
      const t = tput.get(p.name)!;
      const vsSquid = squidT ? `  x${(t / squidT).toFixed(2)} squid` : "";
      console.log(
        `  ${p.name.padEnd(w)}  ${t.toFixed(0).padStart(5)}  (x${
          (t / baseT).toFixed(2)
        } direct${vsSquid})`,
      );
    }
    // CPU time is less disturbed by other load on the machine than wall time.
    console.log(`\negress CPU time per ${DOWNLOAD_BYTES / 1024 / 1024} MB download, median:`);
    for (const [name, runs] of cpuRuns) {
      const ms = median(runs);
      console.log(
        `  ${name.padEnd(w)}  ${ms.toFixed(0).padStart(5)} ms  ` +
          `(one core could move ~${(DOWNLOAD_BYTES / 1e6 / (ms / 1000)).toFixed(0)} MB/s)`,
      );
    }
  } finally {
    for (const d of daemons.reverse()) {
      d.proc.kill("SIGTERM");
      await Promise.race([d.proc.status, new Promise((r) => setTimeout(r, 3000))]);
      d.proc.kill("SIGKILL");
      await d.proc.status;
    }
    for (const d of cleanupDirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--upstream");
  if (i >= 0) await serveUpstream(Deno.args[i + 1] ?? Deno.makeTempDirSync());
  else await main();
}
