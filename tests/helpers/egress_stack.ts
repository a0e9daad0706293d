/**
 * The egress daemon as the bundle runs it, for tests that drive it over real
 * sockets: the pipelock stand-in twice (one for the routes, one for every
 * other host) and egress with the bundle's permissions, in front of a local
 * HTTPS test upstream, plus the raw-socket helpers those tests share.
 */
import { type Daemon, startDaemon, startPipelockStandin } from "./start_daemon.ts";
import assert from "node:assert/strict";
import { egressPermissions } from "../../src/bundle/egress/permissions.ts";
import { mintCa } from "../../src/tls/ca.ts";
import { startTestUpstream, type TestUpstream } from "../fakes/test_upstream.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
export const SECRET = "sk-test-REAL-secret-0123456789abcdef";
/** The bottle's proxy credential: every request the agent sends carries it in the proxy URL. */
export const PROXY_TOKEN = "proxy-token-0123456789abcdef0123";
export const PROXY_AUTH_LINE = `Proxy-Authorization: Basic ${btoa(`bottle:${PROXY_TOKEN}`)}\r\n`;

export interface Stack extends AsyncDisposable {
  upstream: TestUpstream;
  egressPort: number;
  /** The config egress was started with (JSON), for a second egress in the test's own process. */
  configFile: string;
  /** Egress as the agent's proxy URLs name it, credential included. */
  proxyUrl: string;
  egressCaFile: string;
  auditFile: string;
  /** The pipelock for every host but the routes. */
  standin: Daemon;
  /** The routes' own pipelock. */
  routesStandin: Daemon;
  egress: Daemon;
}

export interface StackOptions {
  /** Trust the test upstream's CA in egress (default true). */
  trustUpstream?: boolean;
  /**
   * More HTTPS origins of the test's own on loopback, each routed as
   * `api.test.local:PORT` (the same header and secret as the test upstream)
   * with its CA trusted by egress.
   */
  routedUpstreams?: { port: number; caFile: string }[];
  /** The bottle's allowlist as egress gets it (default: none, pipelock alone decides). */
  allowlist?: string[];
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const dir = await Deno.makeTempDir({ prefix: "egress-it-" });
  const cleanups: (() => Promise<void> | void)[] = [() => Deno.remove(dir, { recursive: true })];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
  };
  try {
    const upstream = await startTestUpstream();
    cleanups.push(() => upstream.close());
    const pipelockConfig = `${dir}/pipelock.yaml`;
    await Deno.writeTextFile(
      pipelockConfig,
      [
        "version: 1",
        "mode: strict",
        "api_allowlist:",
        "  - api.test.local",
        "  - open.test.local",
        "  - plain.test.local",
        "forward_proxy:",
        "  enabled: true",
        "sentry:",
        "  enabled: false",
        "",
      ].join("\n"),
    );
    const names = [
      "api.test.local",
      "open.test.local",
      "blocked.test.local",
      "plain.test.local",
      "refused.test.local",
    ];
    // Two pipelocks, as in a bundle with routes: one for the routes, one for everything else.
    const standin = await startPipelockStandin(pipelockConfig, names);
    cleanups.push(async () => {
      standin.proc.kill("SIGKILL");
      await standin.proc.status;
    });
    const routesConfig = `${dir}/pipelock-routes.yaml`;
    await Deno.writeTextFile(
      routesConfig,
      (await Deno.readTextFile(pipelockConfig)).replace(
        /api_allowlist:\n( {2}- .*\n)+/,
        "api_allowlist:\n  - api.test.local\n",
      ),
    );
    const routesStandin = await startPipelockStandin(routesConfig, names);
    cleanups.push(async () => {
      routesStandin.proc.kill("SIGKILL");
      await routesStandin.proc.status;
    });
    const ca = await mintCa({ commonName: "bottle egress test CA" });
    const egressCaFile = `${dir}/egress-ca.pem`;
    await Deno.writeTextFile(egressCaFile, ca.certPem);
    await Deno.writeTextFile(`${dir}/egress-ca-key.pem`, ca.keyPem, { mode: 0o600 });
    const auditFile = `${dir}/audit.jsonl`;
    // A fixed free port: egress may listen only on the port it is granted.
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const egressPort = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const extra = options.routedUpstreams ?? [];
    const config = {
      bottle: "it-bottle",
      listen: { host: "127.0.0.1", port: egressPort },
      upstreamProxy: `http://127.0.0.1:${standin.port}`,
      routesProxy: `http://127.0.0.1:${routesStandin.port}`,
      auditLog: auditFile,
      caCertFile: egressCaFile,
      caKeyFile: `${dir}/egress-ca-key.pem`,
      upstreamCaFiles: [
        ...options.trustUpstream === false ? [] : [upstream.caFile],
        ...extra.map((u) => u.caFile),
      ],
      proxyAuth: { tokenEnv: "BOTTLE_EGRESS_PROXY_TOKEN" },
      ...(options.allowlist ? { allowlist: options.allowlist } : {}),
      routes: [
        {
          host: `api.test.local:${upstream.port}`,
          header: "x-api-key",
          template: "{value}",
          valueEnv: "BOTTLE_ROUTE_0",
        },
        {
          host: `refused.test.local:${upstream.port}`,
          header: "authorization",
          template: "Bearer {value}",
          valueEnv: "BOTTLE_ROUTE_0",
        },
        ...extra.map((u) => ({
          host: `api.test.local:${u.port}`,
          header: "x-api-key",
          template: "{value}",
          valueEnv: "BOTTLE_ROUTE_0",
        })),
      ],
    };
    await Deno.writeTextFile(`${dir}/egress.json`, JSON.stringify(config));
    // The daemon runs as the bundle runs it: its grants, not -A, and its secrets on stdin.
    const egress = await startDaemon(
      [
        Deno.execPath(),
        "run",
        ...egressPermissions({
          auditLog: auditFile,
          socketsDir: dir,
          listenPort: egressPort,
          upstreams: [`127.0.0.1:${standin.port}`, `127.0.0.1:${routesStandin.port}`],
          readDirs: [dir, upstream.caFile, ...extra.map((u) => u.caFile)],
        }),
        `${ROOT}src/bundle/egress/main.ts`,
        "--config",
        `${dir}/egress.json`,
        "--secrets-from-stdin",
      ],
      {},
      JSON.stringify({ BOTTLE_ROUTE_0: SECRET, BOTTLE_EGRESS_PROXY_TOKEN: PROXY_TOKEN }),
    );
    cleanups.push(async () => {
      egress.proc.kill("SIGKILL");
      await egress.proc.status;
    });
    return {
      upstream,
      egressPort: egress.port,
      configFile: `${dir}/egress.json`,
      proxyUrl: `http://bottle:${PROXY_TOKEN}@127.0.0.1:${egress.port}`,
      egressCaFile,
      auditFile,
      standin,
      routesStandin,
      egress,
      [Symbol.asyncDispose]: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

export function curlArgs(s: Stack, url: string, extra: string[] = []): string[] {
  return [
    "curl",
    "-sS",
    "--max-time",
    "60",
    "--proxy",
    s.proxyUrl,
    "--cacert",
    s.egressCaFile,
    ...extra,
    url,
  ];
}

export async function auditLines(s: Stack): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(s.auditFile);
  return text.trim().split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

/** Polls until `check` is true (audit lines are written when a request ends). */
export async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
/** One masked client WebSocket frame (RFC 6455 §5.2). */
export function wsFrame(text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const frame = new Uint8Array(2 + 4 + payload.length);
  frame[0] = 0x81;
  frame[1] = 0x80 | payload.length;
  frame.set(mask, 2);
  payload.forEach((b, i) => (frame[6 + i] = b ^ mask[i % 4]!));
  return frame;
}

/**
 * Sends `head` (and `body`) as raw bytes inside a routed tunnel to the test
 * upstream and returns egress's answer: requests curl would never send.
 */
export async function rawRouted(s: Stack, head: string, body = ""): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.egressPort });
  const enc = new TextEncoder();
  const target = `api.test.local:${s.upstream.port}`;
  await conn.write(
    enc.encode(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${PROXY_AUTH_LINE}\r\n`),
  );
  const buf = new Uint8Array(4096);
  const n = await conn.read(buf);
  assert.match(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^HTTP\/1\.1 200/);
  const tls = await Deno.startTls(conn, {
    hostname: "api.test.local",
    caCerts: [await Deno.readTextFile(s.egressCaFile)],
  });
  try {
    // Read while writing: egress may answer (and stop reading) before all is sent.
    let out = "";
    const dec = new TextDecoder();
    const reading = (async () => {
      const rbuf = new Uint8Array(65536);
      for (;;) {
        const m = await tls.read(rbuf).catch(() => null);
        if (m === null) return;
        out += dec.decode(rbuf.subarray(0, m));
        if (/\r\n\r\n[\s\S]*\n$/.test(out)) return;
      }
    })();
    await tls.write(enc.encode(head + body)).catch(() => {});
    await Promise.race([reading, new Promise((r) => setTimeout(r, 10_000))]);
    return out;
  } finally {
    try {
      tls.close();
    } catch { /* closed by egress */ }
  }
}
