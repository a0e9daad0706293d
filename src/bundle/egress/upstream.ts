/**
 * Egress never dials the internet: every outgoing connection is a CONNECT
 * tunnel (or an absolute-form request) through the upstream proxy, pipelock,
 * which owns the allowlist. This file opens those connections.
 */
import { BufferedWire } from "./buffered.ts";
import {
  getHeader,
  MAX_HEAD_BYTES,
  parseResponseHead,
  type ResponseHead,
  serializeRequestHead,
} from "./http1.ts";
import { DenoWire } from "./wire.ts";

export interface ProxyEndpoint {
  hostname: string;
  port: number;
}

export function parseProxyUrl(url: string): ProxyEndpoint {
  const u = new URL(url);
  return { hostname: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || 80) };
}

/** `host:port`, with IPv6 literals bracketed. */
export function formatAuthority(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** The upstream proxy answered a CONNECT with something other than 2xx. */
export class ProxyRefusedError extends Error {
  override name = "ProxyRefusedError";
  constructor(readonly head: ResponseHead, readonly body: Uint8Array) {
    super(`Upstream proxy refused: ${head.status} ${head.reason}`.trimEnd());
  }
}

/** The upstream proxy could not be reached, or broke the protocol. */
export class ProxyUnavailableError extends Error {
  override name = "ProxyUnavailableError";
}

const MAX_REFUSAL_BODY = 64 * 1024;

/** A plain TCP connection to the upstream proxy. */
export async function dialProxy(
  proxy: ProxyEndpoint,
): Promise<{ conn: Deno.TcpConn; wire: BufferedWire }> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: proxy.hostname, port: proxy.port });
  } catch (err) {
    throw new ProxyUnavailableError(
      `Cannot reach upstream proxy ${formatAuthority(proxy.hostname, proxy.port)}: ${
        (err as Error).message
      }`,
    );
  }
  conn.setNoDelay(true);
  return { conn, wire: new BufferedWire(new DenoWire(conn)) };
}

/**
 * Opens a CONNECT tunnel to `host:port` through the proxy. Throws
 * `ProxyRefusedError` carrying the proxy's answer, for relaying to the agent.
 */
export async function openTunnel(
  proxy: ProxyEndpoint,
  host: string,
  port: number,
): Promise<{ conn: Deno.TcpConn; wire: BufferedWire }> {
  const { conn, wire } = await dialProxy(proxy);
  const authority = formatAuthority(host, port);
  try {
    await wire.write(serializeRequestHead({
      method: "CONNECT",
      target: authority,
      version: "HTTP/1.1",
      headers: [["Host", authority]],
    }));
    const bytes = await wire.readHead(MAX_HEAD_BYTES);
    if (bytes === null) throw new ProxyUnavailableError("Upstream proxy closed the connection");
    const head = parseResponseHead(bytes);
    if (head.status >= 200 && head.status < 300) return { conn, wire };
    const body = await readSmallBody(wire, head);
    throw new ProxyRefusedError(head, body);
  } catch (err) {
    wire.close();
    if (err instanceof ProxyRefusedError || err instanceof ProxyUnavailableError) throw err;
    throw new ProxyUnavailableError(`Upstream proxy CONNECT failed: ${(err as Error).message}`);
  }
}

/**
 * A TLS connection to `host:port` through a CONNECT tunnel, verified against
 * the default roots plus `caCerts`, with SNI `host` and HTTP/1.1 only.
 */
export async function openTlsTunnel(
  proxy: ProxyEndpoint,
  host: string,
  port: number,
  caCerts: string[],
): Promise<BufferedWire> {
  const { conn, wire } = await openTunnel(proxy, host, port);
  if (wire.hasPending) {
    wire.close();
    throw new ProxyUnavailableError("Upstream proxy sent bytes before the TLS handshake");
  }
  try {
    const tls = await Deno.startTls(conn, { hostname: host, caCerts, alpnProtocols: ["http/1.1"] });
    await tls.handshake();
    return new BufferedWire(new DenoWire(tls));
  } catch (err) {
    try {
      conn.close();
    } catch {
      // startTls may already own and have closed it.
    }
    throw new Error(`TLS to "${host}" failed: ${(err as Error).message}`);
  }
}

async function readSmallBody(wire: BufferedWire, head: ResponseHead): Promise<Uint8Array> {
  const len = Number(getHeader(head.headers, "content-length") ?? "0");
  if (!(len > 0) || len > MAX_REFUSAL_BODY) return new Uint8Array(0);
  const out = new Uint8Array(len);
  let off = 0;
  while (off < len) {
    const c = await wire.readAtMost(len - off);
    if (c === null) break;
    out.set(c, off);
    off += c.length;
  }
  return out.subarray(0, off);
}
