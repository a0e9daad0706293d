/**
 * What every connection handler of the egress daemon shares, and the small
 * helpers they all use to answer the agent themselves.
 */
import { redact } from "../../proc/secrets.ts";
import type { LeafCert } from "../../tls/leaf.ts";
import { normalizeHost } from "../../tls/pem.ts";
import type { AuditLog } from "../audit_log.ts";
import type { BufferedWire } from "./buffered.ts";
import type { ResolvedRoute } from "./config.ts";
import { binaryToBytes, type Headers1, MAX_HEAD_BYTES } from "./http1.ts";
import type { ProxyEndpoint } from "./upstream.ts";

/** Where routed hosts' certificates come from (a LeafCache, once the CA has loaded). */
export interface LeafSource {
  get(host: string): Promise<LeafCert>;
}

export interface EgressContext {
  proxy: ProxyEndpoint;
  /** Where routed connections go (the routes' pipelock); `proxy` when there is none. */
  routesProxy: ProxyEndpoint;
  routes: ResolvedRoute[];
  leaves: LeafSource;
  /** PEM roots for TLS egress originates: system bundle plus `upstreamCaFiles`. */
  upstreamCaCerts: string[];
  audit: AuditLog;
  /** Diagnostics to stderr; callers pass text through `redact` via this. */
  log(message: string): void;
  /** How long a connection may sit idle between requests. */
  idleTimeoutMs: number;
  /** Hosts the bottle may reach; undefined: pipelock alone decides. */
  allowlist?: string[];
  /** The proxy credential requests must carry; undefined: none asked (tests, old configs). */
  proxyToken?: string;
  /** Called once a request to egress itself (the health probe) has its answer. */
  answeredHealth?: () => void;
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  407: "Proxy Authentication Required",
  421: "Misdirected Request",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  504: "Gateway Timeout",
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? "Error";
}

/** A complete response egress makes up itself (errors, health). */
export function simpleResponse(
  status: number,
  body: string,
  options: { close?: boolean; headers?: Headers1; head?: boolean } = {},
): Uint8Array {
  const bodyBytes = new TextEncoder().encode(redact(body));
  let s = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${bodyBytes.length}\r\n`;
  for (const [n, v] of options.headers ?? []) s += `${n}: ${v}\r\n`;
  if (options.close) s += "Connection: close\r\n";
  const head = binaryToBytes(s + "\r\n");
  if (options.head) return head;
  const out = new Uint8Array(head.length + bodyBytes.length);
  out.set(head);
  out.set(bodyBytes, head.length);
  return out;
}

/** Writes `bytes` and ignores a peer that is already gone. */
export async function tryWrite(wire: BufferedWire, bytes: Uint8Array): Promise<void> {
  try {
    await wire.write(bytes);
  } catch {
    // The agent hung up; there is no one left to tell.
  }
}

/** Reads a request head, closing the connection if none starts within `idleMs`. */
export async function readHeadIdle(wire: BufferedWire, idleMs: number): Promise<Uint8Array | null> {
  const timer = setTimeout(() => wire.close(), idleMs);
  try {
    return await wire.readHead(MAX_HEAD_BYTES);
  } finally {
    clearTimeout(timer);
  }
}

export interface Authority {
  host: string;
  port: number;
}

/** Parses `host:port` / `[v6]:port` (a CONNECT target); undefined when malformed. */
export function parseAuthority(text: string, defaultPort?: number): Authority | undefined {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^\s:/?#@[\]]+)(?::(\d{1,5}))?$/.exec(text);
  if (!m || !m[1]) return undefined;
  const port = m[2] !== undefined ? Number(m[2]) : defaultPort;
  if (port === undefined || port < 1 || port > 65535) return undefined;
  const host = normalizeHost(m[1]);
  if (host === "") return undefined;
  return { host, port };
}

/** Host for audit lines: the port only when it is not the scheme's default. */
export function auditHost(a: Authority, defaultPort: number): string {
  const h = a.host.includes(":") ? `[${a.host}]` : a.host;
  return a.port === defaultPort ? h : `${h}:${a.port}`;
}

/** The message of any thrown value, for logs and audit reasons. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Refuses one request: answers the agent with `status` and the reason, and
 * writes the "denied" audit line. Returns whether the connection stays open.
 */
export async function denyRequest(
  ctx: EgressContext,
  agent: BufferedWire,
  r: {
    method: string;
    host: string;
    path?: string | undefined;
    status: number;
    reason: string;
    keep: boolean;
    headers?: Headers1;
  },
): Promise<boolean> {
  const bytes = simpleResponse(r.status, `egress: ${r.reason}\n`, {
    close: !r.keep,
    ...(r.headers ? { headers: r.headers } : {}),
  });
  await tryWrite(agent, bytes);
  if (!r.keep) await lingerClose(agent);
  ctx.audit.write({
    method: r.method,
    host: r.host,
    ...(r.path !== undefined ? { path: r.path } : {}),
    status: r.status,
    bytes_up: 0,
    bytes_down: bytes.length,
    decision: "denied",
    reason: r.reason,
  });
  return r.keep;
}

const LINGER_MS = 1000;
const LINGER_BYTES = 1 << 20;

/**
 * Ends the write side and reads (and drops) what the agent is still sending
 * for a moment: closing with unread input makes the kernel reset the
 * connection, and the agent would lose the answer it was just sent (RFC 9112
 * §9.6). Bounded in time and bytes.
 */
export async function lingerClose(agent: BufferedWire): Promise<void> {
  try {
    await agent.closeWrite();
  } catch {
    return;
  }
  const deadline = Date.now() + LINGER_MS;
  let drained = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    while (drained < LINGER_BYTES) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      const chunk = await Promise.race([
        agent.read().catch(() => null),
        new Promise<null>((r) => (timer = setTimeout(() => r(null), left))),
      ]);
      clearTimeout(timer);
      if (chunk === null) return;
      drained += chunk.length;
    }
  } finally {
    clearTimeout(timer);
  }
}
