/**
 * Egress benchmark, all on loopback, one run, every path side by side:
 *
 *   direct                      curl -> upstream
 *   squid                       curl -> squid (CONNECT) -> upstream
 *   pipelock stand-in           curl -> stand-in (CONNECT) -> upstream
 *   squid -> stand-in           curl -> squid -> stand-in -> upstream
 *   egress tunnel -> stand-in   curl -> egress (CONNECT, untouched) -> stand-in -> upstream
 *   egress routed -> stand-in   curl -> egress (TLS terminated, credential injected)
 *                                    -> stand-in -> upstream (TLS again)
 *   egress tunnel -> squid      the same two with squid as egress's upstream proxy
 *   egress routed -> squid
 *   squid ssl-bump              curl -> squid (TLS terminated with its own CA, re-encrypted)
 *                                    -> upstream
 *
 * Egress always sits in front of another proxy (pipelock), so the like-for-
 * like comparison is squid in the same place: "squid -> stand-in" against
 * "egress tunnel -> stand-in". The "-> squid" paths put a fast C proxy
 * behind egress, so the stand-in (Deno, slower than pipelock's Go) is not
 * what limits them. A routed request does more than any tunnel (TLS is
 * decrypted and encrypted again), so its like-for-like reference is squid
 * doing the same: "squid ssl-bump" (Debian's squid-openssl package, which
 * replaces squid; skipped with plain squid). Routed paths are also given as
 * a ratio of it.
 *
 * Latency: 500 sequential keep-alive GETs on one connection (plus 20 warm-up),
 * each timed by curl (`time_total`). Throughput: a 100 MB download. Rounds
 * interleave the paths; the figures are medians over rounds. Every process of
 * a path (curl included) has its CPU time per download reported: on a small
 * machine the processes of a chain share the cores, so a chain's throughput
 * is bounded by its total CPU time per byte, not only by egress's share.
 * The upstream is a bare HTTP/1.1-over-TLS server in its own process that
 * shares no code with egress, so changing egress leaves the origin as it was.
 * curl speaks HTTP/1.1 on all paths (egress offers nothing else on routed hosts).
 *
 *   deno run -A bench/egress_bench.ts [--rounds N] [--baseline DIR]
 *
 * `--baseline DIR` also runs the egress of another checkout (DIR holds its
 * `deno.json` and `src/`, e.g. `git archive HEAD src deno.json deno.lock |
 * tar -x -C DIR`), so a change is measured against its parent in the same
 * run. Needs curl; squid if installed (`apt-get install -y squid-openssl`, or
 * `squid` without the ssl-bump path).
 */
import { type Daemon, startDaemon, startPipelockStandin } from "../tests/helpers/start_daemon.ts";
import { run, spawn } from "../src/proc/runner.ts";
import { loadCa, mintCa } from "../src/tls/ca.ts";
import { mintLeaf } from "../src/tls/leaf.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SMALL_REQUESTS = 500;
const WARMUP = 20;
const DOWNLOAD_BYTES = 100 * 1024 * 1024;
const DEFAULT_ROUNDS = 5;

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
  for await (const conn of listener) {
    serveOrigin(conn).catch(() => {}).finally(() => closeQuietly(conn));
  }
  throw new Error("upstream listener closed");
}

const BLOCK = new Uint8Array(256 * 1024).fill(0x61);

/** Answers `GET /…?n=N` with N bytes, keep-alive; request bodies are not supported. */
async function serveOrigin(conn: Deno.Conn): Promise<void> {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const buf = new Uint8Array(64 * 1024);
  let have = "";
  for (;;) {
    let end = have.indexOf("\r\n\r\n");
    while (end < 0) {
      const n = await conn.read(buf);
      if (n === null) return;
      have += dec.decode(buf.subarray(0, n));
      end = have.indexOf("\r\n\r\n");
    }
    const head = have.slice(0, end);
    have = have.slice(end + 4);
    const size = Number(/^\S+ \S*[?&]n=(\d+)/.exec(head)?.[1] ?? "2");
    const resHead = enc.encode(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`);
    // Head and first block in one write: a TLS listener has Nagle on, and
    // a lone small head would wait out the peer's delayed ACK (~40 ms).
    const first = Math.min(size, BLOCK.length);
    const out = new Uint8Array(resHead.length + first);
    out.set(resHead);
    out.set(BLOCK.subarray(0, first), resHead.length);
    await writeAll(conn, out);
    for (let left = size - first; left > 0; left -= BLOCK.length) {
      await writeAll(conn, BLOCK.subarray(0, Math.min(left, BLOCK.length)));
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
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

function findSquid(): string | undefined {
  return ["/usr/sbin/squid", "/usr/bin/squid"].find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
}

/** Where Debian's squid-openssl keeps the helper that mints bumped certificates. */
const SQUID_CERTGEN = "/usr/lib/squid/security_file_certgen";

/** Whether `squid` was built with OpenSSL and has its certificate helper: ssl-bump works. */
async function squidCanBump(squid: string): Promise<boolean> {
  const v = await run([squid, "-v"], { check: false });
  try {
    return v.stdout.includes("--with-openssl") && Deno.statSync(SQUID_CERTGEN).isFile;
  } catch {
    return false;
  }
}

/** TLS interception for squid: its CA, and the CA it trusts upstream (PEM). */
interface SquidBump {
  caCertPem: string;
  caKeyPem: string;
  upstreamCaPem: string;
}

/**
 * A squid forward proxy; with `parentPort`, it sends everything through that
 * proxy; with `bump`, it terminates every CONNECT's TLS with certificates
 * minted from `bump`'s CA and opens its own TLS upstream.
 */
async function startSquid(
  squid: string,
  parentPort?: number,
  bump?: SquidBump,
): Promise<{ daemon: Daemon; dir: string }> {
  const port = freePort();
  // Its own directory, open to all: squid started as root drops to its
  // cache_effective_user, which must still read its hosts file and write its log.
  const sq = await Deno.makeTempDir({ prefix: "egress-bench-squid-" });
  await Deno.chmod(sq, 0o777);
  await Deno.writeTextFile(`${sq}/hosts`, "127.0.0.1 api.test.local open.test.local\n");
  if (bump) {
    // In squid's own directory, which its effective user can read.
    await Deno.writeTextFile(`${sq}/ca.pem`, bump.caCertPem);
    await Deno.writeTextFile(`${sq}/ca-key.pem`, bump.caKeyPem);
    await Deno.writeTextFile(`${sq}/upstream-ca.pem`, bump.upstreamCaPem);
    await run([SQUID_CERTGEN, "-c", "-s", `${sq}/ssl_db`, "-M", "4MB"]);
    await run(["chmod", "-R", "a+rX", sq]);
    await run(["chmod", "-R", "a+rwX", `${sq}/ssl_db`]);
  }
  await Deno.writeTextFile(
    `${sq}/squid.conf`,
    [
      bump
        ? `http_port 127.0.0.1:${port} ssl-bump generate-host-certificates=on ` +
          `dynamic_cert_mem_cache_size=4MB tls-cert=${sq}/ca.pem tls-key=${sq}/ca-key.pem`
        : `http_port 127.0.0.1:${port}`,
      ...(bump
        ? [
          `sslcrtd_program ${SQUID_CERTGEN} -s ${sq}/ssl_db -M 4MB`,
          "sslcrtd_children 2 startup=1",
          "acl step1 at_step SslBump1",
          "ssl_bump peek step1",
          "ssl_bump bump all",
          `tls_outgoing_options cafile=${sq}/upstream-ca.pem`,
        ]
        : []),
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
      ...(parentPort === undefined ? [] : [
        `cache_peer 127.0.0.1 parent ${parentPort} 0 no-query no-digest default`,
        "never_direct allow all",
      ]),
      "",
    ].join("\n"),
  );
  const proc = spawn([squid, "-N", "-f", `${sq}/squid.conf`], { stdout: "null", stderr: "null" });
  await waitForPort(port, "squid");
  return { daemon: { proc, port, stderr: () => "" }, dir: sq };
}

interface Path {
  name: string;
  host: string;
  args: string[];
  /** The proxies on the way, named as in `pids`, for CPU accounting. */
  procs: string[];
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

/** MB/s and wall-clock seconds of one 100 MB download. */
async function throughput(path: Path, port: number): Promise<{ mbps: number; secs: number }> {
  const url = `https://${path.host}:${port}/bytes?n=${DOWNLOAD_BYTES}`;
  const [line] = await curlMany(path, [url], "%{size_download} %{speed_download} %{time_total}");
  const [size, speed, secs] = (line ?? "").split(" ").map(Number);
  if (size !== DOWNLOAD_BYTES) throw new Error(`${path.name}: downloaded ${size} bytes`);
  return { mbps: (speed ?? 0) / 1e6, secs: secs ?? NaN };
}

/** The user + system CPU fields of /proc/PID/stat (Linux), in ms; undefined elsewhere. */
function statMs(pid: number | "self", first: number): number | undefined {
  try {
    const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]?.split(" ") ?? [];
    // Fields after the command name start at stat field 3; ticks are 10 ms on Linux.
    return (Number(fields[first - 3]) + Number(fields[first - 2])) * 10;
  } catch {
    return undefined;
  }
}

/** CPU time of process `pid` (utime + stime, every thread). */
const cpuMs = (pid: number) => statMs(pid, 14);
/** CPU time of this process's reaped children (cutime + cstime): how curl is measured. */
const childrenCpuMs = () => statMs("self", 16);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  map.set(key, [...(map.get(key) ?? []), value]);
}

function parseArgs(args: string[]): { rounds: number; baseline?: string } {
  let rounds = DEFAULT_ROUNDS;
  let baseline: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--rounds") rounds = Number(args[++i]);
    else if (args[i] === "--baseline") baseline = args[++i];
    else throw new Error(`Unknown argument "${args[i]}"`);
  }
  if (!(rounds >= 1)) throw new Error("--rounds wants a positive number");
  return { rounds, ...(baseline ? { baseline: baseline.replace(/\/$/, "") } : {}) };
}

async function main(args: string[]): Promise<void> {
  const opts = parseArgs(args);
  const dir = await Deno.makeTempDir({ prefix: "egress-bench-" });
  const daemons: Daemon[] = [];
  const cleanupDirs = [dir];
  const pids = new Map<string, number>();
  const track = (name: string, d: Daemon) => {
    daemons.push(d);
    pids.set(name, d.proc.process.pid);
    return d;
  };
  try {
    const upstream = track(
      "upstream",
      await startDaemon([Deno.execPath(), "run", "-A", import.meta.filename!, "--upstream", dir]),
    );
    const upstreamCa = `${dir}/upstream-ca.pem`;
    await Deno.writeTextFile(
      `${dir}/pipelock.yaml`,
      "version: 1\nmode: strict\napi_allowlist: [api.test.local, open.test.local]\n" +
        "forward_proxy:\n  enabled: true\nsentry:\n  enabled: false\n",
    );
    const standin = track(
      "stand-in",
      await startPipelockStandin(`${dir}/pipelock.yaml`, ["api.test.local", "open.test.local"]),
    );
    const squidBin = findSquid();
    const bumpCa = await mintCa({ commonName: "bench squid ssl-bump CA" });
    const squidBumpCa = `${dir}/squid-bump-ca.pem`;
    await Deno.writeTextFile(squidBumpCa, bumpCa.certPem);
    const bump: SquidBump = {
      caCertPem: bumpCa.certPem,
      caKeyPem: bumpCa.keyPem,
      upstreamCaPem: await Deno.readTextFile(upstreamCa),
    };
    const canBump = squidBin !== undefined && await squidCanBump(squidBin);
    const squids: { name: string; parent?: Daemon; bump?: SquidBump }[] = squidBin
      ? [
        { name: "squid" },
        { name: "squid(->stand-in)", parent: standin },
        ...(canBump ? [{ name: "squid(bump)", bump }] : []),
      ]
      : [];
    const squidPorts = new Map<string, number>();
    for (const s of squids) {
      const started = await startSquid(squidBin!, s.parent?.port, s.bump);
      track(s.name, started.daemon);
      cleanupDirs.push(started.dir);
      squidPorts.set(s.name, started.daemon.port);
    }

    const ca = await mintCa({ commonName: "bench egress CA" });
    await Deno.writeTextFile(`${dir}/egress-ca.pem`, ca.certPem);
    await Deno.writeTextFile(`${dir}/egress-ca-key.pem`, ca.keyPem, { mode: 0o600 });
    /** Egress instances: this checkout (and the baseline's), each in front of each upstream proxy. */
    const egresses: { label: string; root: string; via: string; port: number }[] = [];
    const trees = [{ label: "egress", root: ROOT.replace(/\/$/, "") }];
    if (opts.baseline) trees.push({ label: "base egress", root: opts.baseline });
    const upstreamProxies = [{ via: "stand-in", port: standin.port }];
    const squidPort = squidPorts.get("squid");
    if (squidPort !== undefined) upstreamProxies.push({ via: "squid", port: squidPort });
    for (const tree of trees) {
      for (const up of upstreamProxies) {
        const name = `${tree.label}(->${up.via})`;
        const cfg = `${dir}/${name.replace(/\W+/g, "_")}.json`;
        await Deno.writeTextFile(
          cfg,
          JSON.stringify({
            bottle: "bench",
            listen: { host: "127.0.0.1", port: 0 },
            upstreamProxy: `http://127.0.0.1:${up.port}`,
            auditLog: `${cfg}.audit.jsonl`,
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
        const d = track(
          name,
          await startDaemon(
            [
              Deno.execPath(),
              "run",
              "-A",
              "--config",
              `${tree.root}/deno.json`,
              `${tree.root}/src/bundle/egress/main.ts`,
              "--config",
              cfg,
            ],
            { BENCH_SECRET: "bench-secret-value" },
          ),
        );
        egresses.push({ label: tree.label, root: tree.root, via: up.via, port: d.port });
      }
    }

    const via = (port: number) => ["--proxy", `http://127.0.0.1:${port}`];
    const paths: Path[] = [
      {
        name: "direct",
        host: "api.test.local",
        args: ["--cacert", upstreamCa, "--resolve", `api.test.local:${upstream.port}:127.0.0.1`],
        procs: [],
      },
    ];
    if (squidPort !== undefined) {
      paths.push({
        name: "squid",
        host: "open.test.local",
        args: [...via(squidPort), "--cacert", upstreamCa],
        procs: ["squid"],
      });
    }
    paths.push({
      name: "pipelock stand-in",
      host: "open.test.local",
      args: [...via(standin.port), "--cacert", upstreamCa],
      procs: ["stand-in"],
    });
    const chained = squidPorts.get("squid(->stand-in)");
    if (chained !== undefined) {
      paths.push({
        name: "squid -> stand-in",
        host: "open.test.local",
        args: [...via(chained), "--cacert", upstreamCa],
        procs: ["squid(->stand-in)", "stand-in"],
      });
    }
    const bumpPort = squidPorts.get("squid(bump)");
    if (bumpPort !== undefined) {
      paths.push({
        name: "squid ssl-bump",
        host: "api.test.local",
        args: [...via(bumpPort), "--cacert", squidBumpCa],
        procs: ["squid(bump)"],
      });
    }
    for (const e of egresses) {
      const procs = [`${e.label}(->${e.via})`, ...(e.via === "stand-in" ? ["stand-in"] : [e.via])];
      paths.push({
        name: `${e.label} tunnel -> ${e.via}`,
        host: "open.test.local",
        args: [...via(e.port), "--cacert", upstreamCa],
        procs,
      });
      paths.push({
        name: `${e.label} routed -> ${e.via}`,
        host: "api.test.local",
        args: [...via(e.port), "--cacert", `${dir}/egress-ca.pem`],
        procs,
      });
    }

    console.log(
      `egress bench: loopback, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}, ` +
        `${opts.rounds} rounds`,
    );
    if (!squidBin) console.log("squid: not installed (apt-get install -y squid-openssl); skipped");
    else if (!canBump) {
      console.log("squid ssl-bump: this squid has no OpenSSL (apt-get install -y squid-openssl)");
    }
    if (opts.baseline) console.log(`baseline egress: ${opts.baseline}`);
    const load = () => Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
    console.log(`load average before: ${load()}`);

    // Rounds interleave the paths, so a burst of load from elsewhere on the
    // machine hits all of them alike; each figure is the median over rounds.
    const latRuns = new Map<string, { p50: number; p99: number }[]>();
    const tputRuns = new Map<string, number[]>();
    const wallRuns = new Map<string, number[]>();
    const cpuRuns = new Map<string, number[]>();
    for (let round = 0; round < opts.rounds; round++) {
      for (const p of paths) {
        push(latRuns, p.name, await latency(p, upstream.port));
        const who = ["curl", "upstream", ...p.procs];
        const read = () =>
          who.map((w) => (w === "curl" ? childrenCpuMs() : cpuMs(pids.get(w)!)) ?? NaN);
        const before = read();
        const t = await throughput(p, upstream.port);
        const after = read();
        push(tputRuns, p.name, t.mbps);
        push(wallRuns, p.name, t.secs * 1000);
        who.forEach((w, i) => push(cpuRuns, `${p.name}\0${w}`, after[i]! - before[i]!));
      }
    }
    console.log(`load average after: ${load()}`);

    const lat = new Map<string, { p50: number; p99: number }>();
    const tput = new Map<string, number>();
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
      `\nlatency, ${SMALL_REQUESTS} sequential keep-alive GETs (2-byte body), ms per request, ` +
        `median of ${opts.rounds} rounds:`,
    );
    for (const p of paths) {
      const l = lat.get(p.name)!;
      const vsSquid = squidL ? `  x${(l.p50 / squidL.p50).toFixed(2)} squid` : "";
      console.log(
        `  ${p.name.padEnd(w)}  p50 ${l.p50.toFixed(3)}  p99 ${l.p99.toFixed(3)}  ` +
          `(p50 +${(l.p50 - base.p50).toFixed(3)} over direct${vsSquid})`,
      );
    }
    console.log(
      `\nthroughput, ${DOWNLOAD_BYTES / 1024 / 1024} MB download, median of ${opts.rounds}, MB/s ` +
        `(all rounds in brackets):`,
    );
    const bumpT = tput.get("squid ssl-bump");
    for (const p of paths) {
      const t = tput.get(p.name)!;
      const vsBump = bumpT && p.host === "api.test.local" && p.name !== "direct"
        ? `  x${(t / bumpT).toFixed(2)} squid ssl-bump`
        : "";
      const vsSquid = (squidT ? `  x${(t / squidT).toFixed(2)} squid` : "") + vsBump;
      const all = tputRuns.get(p.name)!.map((x) => x.toFixed(0)).join(" ");
      console.log(
        `  ${p.name.padEnd(w)}  ${t.toFixed(0).padStart(5)}  (x${
          (t / baseT).toFixed(2)
        } direct${vsSquid})  [${all}]`,
      );
    }
    // CPU time is less disturbed by other load on the machine than wall time.
    console.log(
      `\nCPU time per ${
        DOWNLOAD_BYTES / 1024 / 1024
      } MB download, ms, median of ${opts.rounds} (10 ms ticks); ` +
        `"busy" is the chain's CPU time over its wall time, in cores:`,
    );
    for (const p of paths) {
      const who = ["curl", "upstream", ...p.procs];
      const ms = who.map((x) => median(cpuRuns.get(`${p.name}\0${x}`)!));
      const total = ms.reduce((a, b) => a + b, 0);
      const wall = median(wallRuns.get(p.name)!);
      const parts = who.map((x, i) => `${x} ${ms[i]!.toFixed(0)}`).join(", ");
      console.log(
        `  ${p.name.padEnd(w)}  total ${total.toFixed(0).padStart(5)}  busy ${
          (total / wall).toFixed(2)
        }  (${parts})`,
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
  else await main(Deno.args);
}
