/**
 * CONNECT from the agent: a credential-route host goes to `serveRouted`
 * (TLS terminated, credential injected); any other host becomes a byte
 * tunnel through the upstream proxy's own CONNECT, untouched, with the
 * proxy's refusal (pipelock's 403) relayed as the answer.
 */
import type { BufferedWire } from "./buffered.ts";
import {
  auditHost,
  denyRequest,
  type EgressContext,
  errorMessage,
  parseAuthority,
  simpleResponse,
  tryWrite,
} from "./context.ts";
import { refusalResponse } from "./exchange.ts";
import { hostAllowed, refusalDecision } from "./allowlist.ts";
import type { RequestHead } from "./http1.ts";
import { matchRoute } from "./routes.ts";
import { CONNECT_OK, serveRouted } from "./routed.ts";
import { pipeBoth } from "./tunnel.ts";
import { openTunnel, ProxyRefusedError } from "./upstream.ts";
import type { NodeWire } from "./wire.ts";

export async function handleConnect(
  ctx: EgressContext,
  agent: BufferedWire,
  nodeWire: NodeWire,
  req: RequestHead,
): Promise<void> {
  const target = parseAuthority(req.target);
  if (!target) {
    const bytes = simpleResponse(400, "egress: CONNECT target must be host:port\n", {
      close: true,
    });
    await tryWrite(agent, bytes);
    ctx.audit.write({
      method: "CONNECT",
      host: req.target,
      status: 400,
      bytes_up: 0,
      bytes_down: bytes.length,
      decision: "denied",
      reason: "Malformed CONNECT target",
    });
    return;
  }
  if (ctx.allowlist && !hostAllowed(ctx.allowlist, target.host)) {
    const host = auditHost(target, 443);
    await denyRequest(ctx, agent, {
      method: "CONNECT",
      host,
      status: 403,
      reason: "not in the allowlist",
      keep: false,
    });
    return;
  }
  const route = matchRoute(ctx.routes, target.host, target.port);
  if (route) {
    await serveRouted(ctx, agent, nodeWire, target, route);
    return;
  }
  const host = auditHost(target, 443);
  let upstream: BufferedWire;
  try {
    upstream = (await openTunnel(ctx.proxy, target.host, target.port)).wire;
  } catch (err) {
    const refused = err instanceof ProxyRefusedError;
    const bytes = refused
      ? refusalResponse(err)
      : simpleResponse(502, `egress: ${errorMessage(err)}\n`, { close: true });
    await tryWrite(agent, bytes);
    ctx.audit.write({
      method: "CONNECT",
      host,
      status: refused ? err.head.status : 502,
      bytes_up: 0,
      bytes_down: bytes.length,
      decision: refused ? refusalDecision(err.head.status) : "error",
      reason: errorMessage(err),
    });
    return;
  }
  try {
    await agent.write(CONNECT_OK);
  } catch {
    upstream.close();
    return;
  }
  const piped = await pipeBoth(agent, upstream);
  ctx.audit.write({
    method: "CONNECT",
    host,
    status: 200,
    bytes_up: piped.aToB,
    bytes_down: piped.bToA,
    decision: "tunneled",
    reason: piped.error ? `tunnel ended: ${errorMessage(piped.error)}` : "not a credential route",
  });
}
