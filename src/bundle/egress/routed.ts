/**
 * A CONNECT to a credential-route host: egress terminates the agent's TLS
 * with a leaf from the bottle's egress CA, rewrites each request's
 * credentials, and sends it on over its own TLS connection through the
 * upstream proxy. The upstream tunnel is opened before the agent hears "200",
 * so a pipelock refusal reaches the agent as the CONNECT answer, as it would
 * for any other host.
 */
import { refusalDecision } from "./allowlist.ts";
import tls from "node:tls";
import type { Socket } from "node:net";
import { normalizeHost } from "../../tls/pem.ts";
import { BufferedWire, LimitExceededError } from "./buffered.ts";
import type { ResolvedRoute } from "./config.ts";
import {
  auditHost,
  type Authority,
  denyRequest,
  type EgressContext,
  errorMessage,
  parseAuthority,
  readHeadIdle,
  simpleResponse,
  tryWrite,
} from "./context.ts";
import { exchange, refusalResponse } from "./exchange.ts";
import { rewriteRoutedHeaders } from "./headers.ts";
import {
  getHeader,
  HttpError,
  keepsAlive,
  parseRequestHead,
  requestFraming,
  type RequestHead,
  serializeRequestHead,
} from "./http1.ts";
import { openTlsTunnel, ProxyRefusedError } from "./upstream.ts";
import { NodeWire } from "./wire.ts";

const HANDSHAKE_TIMEOUT_MS = 30_000;
export const CONNECT_OK = new TextEncoder().encode("HTTP/1.1 200 Connection established\r\n\r\n");

export async function serveRouted(
  ctx: EgressContext,
  agent: BufferedWire,
  agentSocket: NodeWire,
  target: Authority,
  route: ResolvedRoute,
): Promise<void> {
  const host = auditHost(target, 443);
  const audit = (status: number, decision: "denied" | "error", reason: string, down = 0) =>
    ctx.audit.write({
      method: "CONNECT",
      host,
      status,
      bytes_up: 0,
      bytes_down: down,
      decision,
      reason,
    });
  const connect = () =>
    openTlsTunnel(ctx.routesProxy, target.host, target.port, ctx.upstreamCaCerts);

  let upstream: BufferedWire;
  try {
    upstream = await connect();
  } catch (err) {
    if (err instanceof ProxyRefusedError) {
      const bytes = refusalResponse(err);
      await tryWrite(agent, bytes);
      audit(err.head.status, refusalDecision(err.head.status), err.message, bytes.length);
    } else {
      const bytes = simpleResponse(502, `egress: ${errorMessage(err)}\n`, { close: true });
      await tryWrite(agent, bytes);
      audit(502, "error", errorMessage(err), bytes.length);
    }
    return;
  }

  let secure: BufferedWire;
  let tlsSocket: tls.TLSSocket | undefined;
  try {
    const leaf = await ctx.leaves.get(target.host);
    await agent.write(CONNECT_OK);
    if (agent.hasPending) throw new Error("Client sent data before the tunnel was established");
    const raw = agentSocket.detach();
    tlsSocket = new tls.TLSSocket(raw as Socket, {
      isServer: true,
      cert: leaf.certPem,
      key: leaf.keyPem,
      ALPNProtocols: ["http/1.1"],
    });
    secure = new BufferedWire(new NodeWire(tlsSocket));
    await waitSecure(tlsSocket);
  } catch (err) {
    upstream.close();
    agent.close();
    tlsSocket?.destroy();
    audit(502, "error", `Agent TLS handshake failed: ${errorMessage(err)}`);
    return;
  }

  const session = new RoutedSession(ctx, secure, target, host, route, upstream, connect);
  try {
    await session.run();
  } finally {
    session.close();
  }
}

/**
 * Settles when the agent's handshake completes or fails. An agent that ends
 * or resets its side first can never finish it; Deno's TLSSocket reports that
 * as "end" only (no "close" until destroyed), and without listening for it the
 * agent socket and the upstream tunnel were held for the whole timeout.
 */
function waitSecure(socket: tls.TLSSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error("timed out")), HANDSHAKE_TIMEOUT_MS);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      socket.off("secure", onSecure);
      socket.off("error", finish);
      socket.off("close", onClose);
      socket.off("end", onClose);
      if (err) reject(err);
      else resolve();
    };
    const onSecure = () => finish();
    const onClose = () => finish(new Error("connection closed"));
    socket.on("secure", onSecure);
    socket.on("error", finish);
    socket.on("close", onClose);
    socket.on("end", onClose);
  });
}

class RoutedSession {
  #upstream: BufferedWire | undefined;

  constructor(
    readonly ctx: EgressContext,
    readonly agent: BufferedWire,
    readonly target: Authority,
    readonly host: string,
    readonly route: ResolvedRoute,
    upstream: BufferedWire,
    readonly connect: () => Promise<BufferedWire>,
  ) {
    this.#upstream = upstream;
  }

  close(): void {
    this.#upstream?.close();
    this.agent.close();
  }

  async run(): Promise<void> {
    for (;;) {
      let req: RequestHead;
      try {
        const bytes = await readHeadIdle(this.agent, this.ctx.idleTimeoutMs);
        if (bytes === null) return;
        req = parseRequestHead(bytes);
      } catch (err) {
        if (err instanceof HttpError || err instanceof LimitExceededError) {
          const status = err instanceof HttpError ? err.status : 431;
          await this.#deny("-", undefined, status, errorMessage(err), false);
        }
        return;
      }
      if (!(await this.#handle(req))) return;
    }
  }

  /** Answers one request; false when the connection must end. */
  async #handle(req: RequestHead): Promise<boolean> {
    const agentKeepAlive = keepsAlive(req.version, req.headers);
    const target = this.#originForm(req.target);
    if (target === undefined) {
      return await this.#deny(req.method, undefined, 400, "Malformed request target", false);
    }
    const path = target.split("?")[0] ?? target;
    if (req.method === "CONNECT") {
      return await this.#deny(req.method, path, 405, "CONNECT inside a routed tunnel", false);
    }
    // An origin that echoes TRACE would hand the injected credential back.
    if (req.method === "TRACE" || req.method === "TRACK") {
      return await this.#deny(req.method, path, 405, `${req.method} on a credential route`, false);
    }
    const hosts = req.headers.filter(([k]) => k.toLowerCase() === "host");
    if (hosts.length > 1) {
      // Servers disagree on which of two Hosts counts: the credential would
      // go to whichever name the server picks.
      return await this.#deny(req.method, path, 400, "More than one Host header", false);
    }
    const hostHeader = getHeader(req.headers, "host");
    const hostAuthority = hostHeader === undefined ? undefined : parseAuthority(hostHeader, 443);
    if (
      hostHeader !== undefined &&
      (hostAuthority?.host !== this.target.host || hostAuthority.port !== this.target.port)
    ) {
      // The credential goes to the CONNECT host and port only; a different
      // Host would ask that server to act for another name.
      return await this.#deny(
        req.method,
        path,
        421,
        `Host "${hostHeader}" does not match tunnel "${this.target.host}:${this.target.port}"`,
        agentKeepAlive,
      );
    }
    let framing;
    try {
      framing = requestFraming(req);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 400;
      return await this.#deny(req.method, path, status, errorMessage(err), false);
    }
    const headers = rewriteRoutedHeaders(
      req.headers,
      this.route,
      this.route.secret,
      this.ctx.routes.map((r) => r.header),
    );
    if (hostHeader === undefined) headers.unshift(["Host", this.host]);
    const head = serializeRequestHead({
      method: req.method,
      target,
      version: req.version,
      headers,
    });
    const result = await exchange(
      this.agent,
      { head, method: req.method, framing, agentKeepAlive },
      this.#upstream,
      this.connect,
    );
    this.#upstream = result.upstream;
    this.ctx.audit.write({
      method: req.method,
      host: this.host,
      path,
      status: result.status,
      bytes_up: result.bytesUp,
      bytes_down: result.bytesDown,
      decision: result.failure?.decision ?? "routed",
      reason: result.failure?.reason ?? `credential route "${this.route.host}"`,
    });
    return result.keepAgent;
  }

  /** The origin-form target (path and query) of `target`; undefined when unusable. */
  #originForm(target: string): string | undefined {
    if (target.startsWith("/") || target === "*") return target;
    try {
      const url = new URL(target);
      const port = url.port === "" ? 443 : Number(url.port);
      if (
        url.protocol !== "https:" || normalizeHost(url.hostname) !== this.target.host ||
        port !== this.target.port
      ) {
        return undefined;
      }
      return url.pathname + url.search;
    } catch {
      return undefined;
    }
  }

  #deny(
    method: string,
    path: string | undefined,
    status: number,
    reason: string,
    keep: boolean,
  ): Promise<boolean> {
    return denyRequest(this.ctx, this.agent, {
      method,
      host: this.host,
      path,
      status,
      reason,
      keep,
    });
  }
}
