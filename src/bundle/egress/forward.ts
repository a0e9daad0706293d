/**
 * Absolute-form `http://` requests from the agent, passed to the upstream
 * proxy as they are (pipelock applies its allowlist to them too). Credential
 * route hosts are refused here: a credential is only ever injected into TLS.
 */
import type { BufferedWire } from "./buffered.ts";
import {
  auditHost,
  denyRequest,
  type EgressContext,
  errorMessage,
  parseAuthority,
} from "./context.ts";
import { exchange } from "./exchange.ts";
import { stripProxyHeaders } from "./headers.ts";
import {
  type Headers1,
  HttpError,
  keepsAlive,
  requestFraming,
  type RequestHead,
  serializeRequestHead,
} from "./http1.ts";
import { isRoutedName } from "./routes.ts";
import { dialProxy } from "./upstream.ts";
import { hostAllowed } from "./allowlist.ts";

/**
 * Absolute-form `http://` requests: passed to the upstream proxy as they are,
 * over one reused connection per agent connection.
 */
export class PlainForwarder {
  #upstream: BufferedWire | undefined;

  constructor(readonly ctx: EgressContext, readonly agent: BufferedWire) {}

  close(): void {
    this.#upstream?.close();
  }

  async forward(req: RequestHead): Promise<boolean> {
    const ctx = this.ctx;
    let url: URL | undefined;
    try {
      url = new URL(req.target);
    } catch {
      url = undefined;
    }
    const authority = url && url.protocol === "http:" ? parseAuthority(url.host, 80) : undefined;
    if (!url || !authority) {
      return await this.#deny(req.method, req.target, 400, "Only http:// URLs or CONNECT", false);
    }
    const host = auditHost(authority, 80);
    if (ctx.allowlist && !hostAllowed(ctx.allowlist, authority.host)) {
      return await this.#deny(req.method, host, 403, "not in the allowlist", false);
    }
    if (isRoutedName(ctx.routes, authority.host)) {
      // A credential is only ever injected into TLS, never sent in clear.
      return await this.#deny(req.method, host, 403, "Credential route hosts need https", false);
    }
    let framing;
    try {
      framing = requestFraming(req);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 400;
      return await this.#deny(req.method, host, status, errorMessage(err), false);
    }
    // The URL names the server; a Host that says otherwise is replaced (RFC 9112 §3.2.2).
    const headers: Headers1 = [
      ["Host", url.host],
      ...stripProxyHeaders(req.headers).filter(([n]) => n.toLowerCase() !== "host"),
    ];
    const head = serializeRequestHead({ ...req, headers });
    const result = await exchange(
      this.agent,
      { head, method: req.method, framing, agentKeepAlive: keepsAlive(req.version, req.headers) },
      this.#upstream,
      async () => (await dialProxy(ctx.proxy)).wire,
    );
    this.#upstream = result.upstream;
    ctx.audit.write({
      method: req.method,
      host,
      status: result.status,
      bytes_up: result.bytesUp,
      bytes_down: result.bytesDown,
      decision: result.failure?.decision ?? "forwarded",
      reason: result.failure?.reason ?? "plain http, through pipelock",
    });
    return result.keepAgent;
  }

  #deny(
    method: string,
    host: string,
    status: number,
    reason: string,
    keep: boolean,
  ): Promise<boolean> {
    return denyRequest(this.ctx, this.agent, { method, host, status, reason, keep });
  }
}
