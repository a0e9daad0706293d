/**
 * TEST-ONLY stand-in for pipelock (github.com/luckyPipewrench/pipelock),
 * whose image cannot be pulled in this environment. It keeps the parts of
 * pipelock's contract that bottle relies on, so egress and the config
 * generator can be tested against real processes:
 *
 *   pipelock_standin.ts run --config FILE --listen ADDR [--resolve HOST=IP]...
 *   pipelock_standin.ts check --config FILE
 *
 * - the YAML config: `version: 1`, unknown keys are fatal (top level and the
 *   sections whose fields are known here), `tls_interception` CA files must
 *   exist and the key must be SEC1 EC PEM;
 * - `GET /health` answers 200 on the listen port;
 * - forward proxy (CONNECT and absolute-form http) when
 *   `forward_proxy.enabled`; in `mode: strict` only `api_allowlist` hosts
 *   (exact or `*.suffix`) pass, anything else gets 403;
 * - it dials upstream itself, and logs every decision to stderr.
 *
 * It does NOT do TLS interception or DLP/secret scanning: CONNECT tunnels
 * are passed through untouched even when `tls_interception.enabled` is set.
 * `--resolve HOST=IP` is a test-only flag (pipelock has none): it lets tests
 * use names like `api.test.local` for a server on 127.0.0.1.
 */
import { isMap, LineCounter, parseDocument, type Scalar, type YAMLMap } from "yaml";
import { BufferedWire } from "../../src/bundle/egress/buffered.ts";
import {
  copyBody,
  MAX_HEAD_BYTES,
  parseRequestHead,
  parseResponseHead,
  requestFraming,
  type RequestHead,
  responseFraming,
  serializeRequestHead,
  serializeResponseHead,
} from "../../src/bundle/egress/http1.ts";
import { pipeBoth } from "../../src/bundle/egress/tunnel.ts";
import { DenoWire } from "../../src/bundle/egress/wire.ts";

/** Top-level keys of pipelock's `config.Config` (yaml tags). */
const TOP_LEVEL_KEYS = new Set([
  "version",
  "mode",
  "enforce",
  "explain_blocks",
  "api_allowlist",
  "suppress",
  "fetch_proxy",
  "forward_proxy",
  "websocket_proxy",
  "dlp",
  "response_scanning",
  "mcp_input_scanning",
  "mcp_tool_scanning",
  "mcp_tool_policy",
  "git_protection",
  "logging",
  "session_profiling",
  "adaptive_enforcement",
  "mcp_session_binding",
  "request_body_scanning",
  "kill_switch",
  "sentry",
  "metrics_listen",
  "emit",
  "tool_chain_detection",
  "mcp_ws_listener",
  "tls_interception",
  "cross_request_detection",
  "scan_api",
  "address_protection",
  "seed_phrase_detection",
  "rules",
  "file_sentry",
  "sandbox",
  "agents",
  "license_key",
  "license_file",
  "license_public_key",
  "internal",
  "taint",
]);

/** Fields of the sections bottle writes, as pipelock's structs declare them. */
const SECTION_KEYS: Record<string, { type: string; keys: string[] }> = {
  forward_proxy: {
    type: "ForwardProxy",
    keys: [
      "enabled",
      "max_tunnel_seconds",
      "idle_timeout_seconds",
      "sni_verification",
      "redirect_websocket_hosts",
    ],
  },
  tls_interception: {
    type: "TLSInterception",
    keys: [
      "enabled",
      "ca_cert",
      "ca_key",
      "passthrough_domains",
      "cert_ttl",
      "cert_cache_size",
      "max_response_bytes",
    ],
  },
  sentry: { type: "SentryConfig", keys: ["enabled", "dsn", "environment", "sample_rate", "debug"] },
  logging: {
    type: "LoggingConfig",
    keys: ["format", "output", "file", "include_allowed", "include_blocked"],
  },
  request_body_scanning: {
    type: "RequestBodyScanning",
    keys: [
      "enabled",
      "action",
      "max_body_bytes",
      "scan_headers",
      "header_mode",
      "sensitive_headers",
      "ignore_headers",
    ],
  },
  dlp: {
    type: "DLP",
    keys: [
      "scan_env",
      "secrets_file",
      "min_env_secret_length",
      "include_defaults",
      "patterns",
      "action",
    ],
  },
  websocket_proxy: {
    type: "WebSocketProxy",
    keys: [
      "enabled",
      "max_message_bytes",
      "max_concurrent_connections",
      "scan_text_frames",
      "allow_binary_frames",
      "forward_cookies",
      "strip_compression",
      "max_connection_seconds",
      "idle_timeout_seconds",
      "origin_policy",
    ],
  },
  fetch_proxy: {
    type: "FetchProxy",
    keys: ["listen", "timeout_seconds", "max_response_mb", "user_agent", "monitoring"],
  },
};

export interface StandinConfig {
  mode: string;
  allowlist: string[];
  forwardProxy: boolean;
}

/** Parses and validates a pipelock config; throws with a pipelock-like message. */
export async function loadStandinConfig(path: string): Promise<StandinConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new Error(`loading config: ${(err as Error).message}`);
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  if (doc.errors.length > 0) throw new Error(`parsing config: ${doc.errors[0]?.message}`);
  const root = doc.contents;
  if (!isMap(root)) throw new Error("parsing config: top level must be a mapping");
  const lineOf = (node: unknown) => {
    const range = (node as { range?: [number, number, number] }).range;
    return range ? lc.linePos(range[0]).line : 0;
  };
  const checkKeys = (map: YAMLMap, allowed: Set<string>, type: string) => {
    for (const item of map.items) {
      const key = String((item.key as Scalar).value);
      if (!allowed.has(key)) {
        throw new Error(
          `parsing config: line ${lineOf(item.key)}: field ${key} not found in type config.${type}`,
        );
      }
    }
  };
  checkKeys(root, TOP_LEVEL_KEYS, "Config");
  for (const [section, spec] of Object.entries(SECTION_KEYS)) {
    const node = root.get(section, true);
    if (node === undefined) continue;
    if (!isMap(node)) {
      throw new Error(`parsing config: line ${lineOf(node)}: ${section} must be a mapping`);
    }
    checkKeys(node, new Set(spec.keys), spec.type);
  }
  const cfg = doc.toJS() as Record<string, unknown>;
  if (cfg.version !== 1) throw new Error(`validating config: unsupported version ${cfg.version}`);
  const mode = cfg.mode ?? "balanced";
  if (!["strict", "balanced", "audit"].includes(String(mode))) {
    throw new Error(`validating config: invalid mode "${mode}"`);
  }
  const allowlist = cfg.api_allowlist ?? [];
  if (!Array.isArray(allowlist) || !allowlist.every((h) => typeof h === "string")) {
    throw new Error("validating config: api_allowlist must be a list of strings");
  }
  const fp = (cfg.forward_proxy ?? {}) as Record<string, unknown>;
  const ti = (cfg.tls_interception ?? {}) as Record<string, unknown>;
  if (ti.enabled === true) {
    for (const key of ["ca_cert", "ca_key"]) {
      const file = ti[key];
      if (typeof file !== "string" || file === "") {
        throw new Error(`validating config: tls_interception.${key} is required when enabled`);
      }
      let pem: string;
      try {
        pem = await Deno.readTextFile(file);
      } catch (err) {
        throw new Error(`validating config: tls_interception.${key}: ${(err as Error).message}`);
      }
      if (key === "ca_key" && !pem.includes("-----BEGIN EC PRIVATE KEY-----")) {
        throw new Error("validating config: tls_interception.ca_key must be a SEC1 EC private key");
      }
      if (key === "ca_cert" && !pem.includes("-----BEGIN CERTIFICATE-----")) {
        throw new Error("validating config: tls_interception.ca_cert is not a PEM certificate");
      }
    }
  }
  return {
    mode: String(mode),
    allowlist: allowlist as string[],
    forwardProxy: fp.enabled === true,
  };
}

function allowed(cfg: StandinConfig, host: string): boolean {
  if (cfg.mode !== "strict") return true;
  const h = host.toLowerCase().replace(/\.$/, "");
  return cfg.allowlist.some((p) => {
    const pat = p.toLowerCase();
    return pat.startsWith("*.") ? h.endsWith(pat.slice(1)) : h === pat;
  });
}

function log(message: string): void {
  console.error(`pipelock-standin: ${message}`);
}

const enc = new TextEncoder();

function reply(status: number, reason: string, body: string): Uint8Array {
  const b = enc.encode(body);
  return new Uint8Array([
    ...enc.encode(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nContent-Length: ${b.length}\r\nConnection: close\r\n\r\n`,
    ),
    ...b,
  ]);
}

function splitHostPort(authority: string, defaultPort: number): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(authority);
  return { host: m?.[1] ?? authority, port: Number(m?.[2] ?? defaultPort) };
}

async function serveConn(
  conn: Deno.TcpConn,
  cfg: StandinConfig,
  resolve: Map<string, string>,
): Promise<void> {
  conn.setNoDelay(true);
  const client = new BufferedWire(new DenoWire(conn));
  const dial = async (host: string, port: number) => {
    const c = await Deno.connect({ hostname: resolve.get(host.toLowerCase()) ?? host, port });
    c.setNoDelay(true);
    return new BufferedWire(new DenoWire(c));
  };
  try {
    for (;;) {
      const bytes = await client.readHead(MAX_HEAD_BYTES);
      if (bytes === null) return;
      const req = parseRequestHead(bytes);
      if (req.target === "/health" && req.method === "GET") {
        const body = JSON.stringify({ status: "healthy", mode: cfg.mode });
        await client.write(enc.encode(
          `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        ));
        continue;
      }
      if (!cfg.forwardProxy) {
        log(`block ${req.method} ${req.target}: forward proxy disabled`);
        await client.write(reply(405, "Method Not Allowed", "forward proxy disabled\n"));
        return;
      }
      if (req.method === "CONNECT") {
        await tunnel(client, req, cfg, dial);
        return;
      }
      await forward(client, req, cfg, dial);
      return;
    }
  } catch (err) {
    log(`connection error: ${(err as Error).message}`);
  } finally {
    client.close();
  }
}

async function tunnel(
  client: BufferedWire,
  req: RequestHead,
  cfg: StandinConfig,
  dial: (h: string, p: number) => Promise<BufferedWire>,
): Promise<void> {
  const { host, port } = splitHostPort(req.target, 443);
  if (!allowed(cfg, host)) {
    log(`block CONNECT ${host}:${port}: not in api_allowlist`);
    await client.write(reply(403, "Forbidden", `pipelock: ${host} is not in the allowlist\n`));
    return;
  }
  let upstream: BufferedWire;
  try {
    upstream = await dial(host, port);
  } catch (err) {
    log(`error CONNECT ${host}:${port}: ${(err as Error).message}`);
    await client.write(reply(502, "Bad Gateway", "pipelock: dial failed\n"));
    return;
  }
  log(`allow CONNECT ${host}:${port}`);
  await client.write(enc.encode("HTTP/1.1 200 Connection Established\r\n\r\n"));
  await pipeBoth(client, upstream);
}

/** Absolute-form http: one request per connection, `Connection: close` both ways. */
async function forward(
  client: BufferedWire,
  req: RequestHead,
  cfg: StandinConfig,
  dial: (h: string, p: number) => Promise<BufferedWire>,
): Promise<void> {
  let url: URL;
  try {
    url = new URL(req.target);
  } catch {
    log(`block ${req.method} ${req.target}: not absolute-form`);
    await client.write(reply(400, "Bad Request", "pipelock: absolute URL required\n"));
    return;
  }
  const { host, port } = splitHostPort(url.host, 80);
  if (url.protocol !== "http:" || !allowed(cfg, host)) {
    log(`block ${req.method} ${url.protocol}//${host}:${port}: not in api_allowlist`);
    await client.write(reply(403, "Forbidden", `pipelock: ${host} is not in the allowlist\n`));
    return;
  }
  const upstream = await dial(host, port);
  try {
    log(`allow ${req.method} http://${host}:${port}${url.pathname}`);
    const headers = req.headers.filter(([n]) => !/^(proxy-|connection$|keep-alive$)/i.test(n));
    headers.push(["Connection", "close"]);
    await upstream.write(serializeRequestHead({
      method: req.method,
      target: url.pathname + url.search,
      version: "HTTP/1.1",
      headers,
    }));
    await copyBody(client, upstream, requestFraming(req));
    const rb = await upstream.readHead(MAX_HEAD_BYTES);
    if (rb === null) throw new Error("upstream closed without response");
    const resp = parseResponseHead(rb);
    const framing = responseFraming(resp, req.method);
    const rh = resp.headers.filter(([n]) => !/^(connection|keep-alive)$/i.test(n));
    rh.push(["Connection", "close"]);
    await client.write(serializeResponseHead({ ...resp, headers: rh }));
    await copyBody(upstream, client, framing);
  } finally {
    upstream.close();
  }
}

async function run(args: string[]): Promise<number> {
  let configPath: string | undefined;
  let listen: string | undefined;
  const resolve = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--config") configPath = args[++i];
    else if (a === "--listen") listen = args[++i];
    else if (a === "--resolve") {
      const [h, ip] = (args[++i] ?? "").split("=");
      if (!h || !ip) throw new Error("--resolve wants HOST=IP");
      resolve.set(h.toLowerCase(), ip);
    } else throw new Error(`unknown flag ${a}`);
  }
  if (!configPath) throw new Error("--config is required");
  const cfg = await loadStandinConfig(configPath);
  const { host, port } = splitHostPort(listen ?? "127.0.0.1:8888", 8888);
  const listener = Deno.listen({ hostname: host, port, transport: "tcp" });
  const addr = listener.addr as Deno.NetAddr;
  log(`listening on ${addr.hostname}:${addr.port} mode=${cfg.mode}`);
  Deno.addSignalListener("SIGTERM", () => {
    listener.close();
    Deno.exit(0);
  });
  for await (const conn of listener) serveConn(conn, cfg, resolve);
  return 0;
}

if (import.meta.main) {
  const [command, ...rest] = Deno.args;
  try {
    if (command === "run") Deno.exit(await run(rest));
    if (command === "check") {
      const i = rest.indexOf("--config");
      const path = i >= 0 ? rest[i + 1] : undefined;
      if (!path) throw new Error("--config is required");
      await loadStandinConfig(path);
      console.log(`config ${path} is valid`);
      Deno.exit(0);
    }
    console.error(
      "usage: pipelock_standin.ts run --config FILE --listen ADDR | check --config FILE",
    );
    Deno.exit(2);
  } catch (err) {
    console.error(`Error: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
