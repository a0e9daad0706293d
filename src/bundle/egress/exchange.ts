/**
 * One request/response exchange between the agent and an upstream
 * connection, shared by routed (MITM) requests and plain-http forwarding:
 * send the head, stream the body while the response is read, pass 1xx
 * through, switch to raw piping after a 101, and stream the response back.
 * Connections are reused across requests; a reused upstream that turns out
 * to be closed is retried once when the request had no body to replay.
 */
import { type BufferedWire, LimitExceededError } from "./buffered.ts";
import { errorMessage, simpleResponse, tryWrite } from "./context.ts";
import {
  copyBody,
  type Framing,
  HttpError,
  keepsAlive,
  MAX_HEAD_BYTES,
  parseResponseHead,
  responseFraming,
  type ResponseHead,
} from "./http1.ts";
import { pipeBoth } from "./tunnel.ts";
import { ProxyRefusedError } from "./upstream.ts";
import { refusalDecision } from "./allowlist.ts";

export interface ExchangeRequest {
  /** The request head as it goes upstream. */
  head: Uint8Array;
  method: string;
  framing: Framing;
  /** Whether the agent asked to keep its connection. */
  agentKeepAlive: boolean;
}

export interface ExchangeResult {
  status: number;
  bytesUp: number;
  bytesDown: number;
  /** Whether the agent connection can take another request. */
  keepAgent: boolean;
  /** The upstream connection to reuse, if it stays usable. */
  upstream: BufferedWire | undefined;
  /** Set when egress, not the upstream, ended the exchange. */
  failure?: { decision: "denied" | "error"; reason: string };
}

/** Raised before anything reached the agent: the caller may answer with a status. */
class NoResponse extends Error {}

export async function exchange(
  agent: BufferedWire,
  req: ExchangeRequest,
  current: BufferedWire | undefined,
  connect: () => Promise<BufferedWire>,
): Promise<ExchangeResult> {
  let bytesUp = 0;
  let bytesDown = 0;
  if (current?.closedWhileIdle) {
    current.close();
    current = undefined;
  }
  let up = current;
  let reused = current !== undefined;
  let sentToAgent = false;

  const fail = async (
    status: number,
    decision: "denied" | "error",
    reason: string,
    response?: Uint8Array,
  ): Promise<ExchangeResult> => {
    up?.close();
    if (!sentToAgent) {
      const bytes = response ?? simpleResponse(status, `egress: ${reason}\n`, { close: true });
      await tryWrite(agent, bytes);
      bytesDown += bytes.length;
    }
    return {
      status,
      bytesUp,
      bytesDown,
      keepAgent: false,
      upstream: undefined,
      failure: { decision, reason },
    };
  };

  for (let attempt = 0;; attempt++) {
    if (!up) {
      try {
        up = await connect();
        reused = false;
      } catch (err) {
        if (err instanceof ProxyRefusedError) {
          return await fail(
            err.head.status,
            refusalDecision(err.head.status),
            err.message,
            refusalResponse(err),
          );
        }
        return await fail(502, "error", errorMessage(err));
      }
    }
    const upstream = up;
    let bodyDone = req.framing.kind === "none";
    let bodyError: unknown;
    try {
      await upstream.write(req.head);
    } catch (err) {
      if (reused && attempt === 0 && bodyDone) {
        upstream.close();
        up = undefined;
        continue;
      }
      return await fail(502, "error", `Cannot send request upstream: ${errorMessage(err)}`);
    }
    bytesUp = req.head.length;
    const bodyPump = bodyDone
      ? Promise.resolve()
      : copyBody(agent, upstream, req.framing, true).then(
        (n) => {
          bytesUp += n;
          bodyDone = true;
        },
        (err) => {
          bodyError = err;
          // Unblock the response read: the request can no longer complete.
          upstream.close();
        },
      );

    let head: ResponseHead;
    try {
      let bytes = await upstream.readHead(MAX_HEAD_BYTES);
      if (bytes === null && reused && attempt === 0 && req.framing.kind === "none") {
        upstream.close();
        up = undefined;
        continue;
      }
      for (;;) {
        if (bytes === null) {
          throw new NoResponse("Upstream closed the connection without a response");
        }
        head = parseResponseHead(bytes);
        if (head.status >= 200 || head.status === 101) break;
        // 100 Continue, 103 Early Hints: pass on, then wait for the final answer.
        await agent.write(bytes);
        sentToAgent = true;
        bytesDown += bytes.length;
        bytes = await upstream.readHead(MAX_HEAD_BYTES);
      }
      await agent.write(bytes);
      sentToAgent = true;
      bytesDown += bytes.length;
    } catch (err) {
      const reason = bodyError
        ? `Request body failed: ${errorMessage(bodyError)}`
        : errorMessage(err);
      // A body the agent framed wrong is the agent's fault (400), not the upstream's.
      const refused = bodyError instanceof HttpError || bodyError instanceof LimitExceededError;
      const status = bodyError instanceof HttpError ? bodyError.status : refused ? 400 : 502;
      const result = await fail(status, refused ? "denied" : "error", reason);
      // The body pump may be waiting on the agent: end it with the connection.
      if (!bodyDone) agent.close();
      await bodyPump;
      return result;
    }

    if (head.status === 101) {
      // Upgraded (WebSocket): from here on the connection is an opaque pipe.
      await bodyPump;
      const piped = await pipeBoth(agent, upstream);
      return {
        status: 101,
        bytesUp: bytesUp + piped.aToB,
        bytesDown: bytesDown + piped.bToA,
        keepAgent: false,
        upstream: undefined,
      };
    }

    let framing: Framing;
    try {
      framing = responseFraming(head, req.method);
      bytesDown += await copyBody(upstream, agent, framing);
    } catch (err) {
      upstream.close();
      agent.close();
      await bodyPump;
      return {
        status: head.status,
        bytesUp,
        bytesDown,
        keepAgent: false,
        upstream: undefined,
        failure: { decision: "error", reason: `Response body failed: ${errorMessage(err)}` },
      };
    }
    // A server may answer before reading the whole body (413, 401): then
    // neither connection is at a message boundary any more.
    await Promise.race([bodyPump, Promise.resolve()]);
    const clean = bodyDone && framing.kind !== "close";
    const upKeep = clean && keepsAlive(head.version, head.headers);
    if (upKeep) upstream.watchIdle();
    else upstream.close();
    const keepAgent = clean && req.agentKeepAlive && keepsAlive(head.version, head.headers);
    if (!bodyDone) {
      agent.close();
      await bodyPump;
    }
    return {
      status: head.status,
      bytesUp,
      bytesDown,
      keepAgent,
      upstream: upKeep ? upstream : undefined,
    };
  }
}

/** The upstream proxy's refusal, as a complete response that closes the connection. */
export function refusalResponse(err: ProxyRefusedError): Uint8Array {
  const headers = err.head.headers.filter(([n]) => {
    const l = n.toLowerCase();
    return l !== "content-length" && l !== "transfer-encoding" && l !== "connection";
  });
  let s = `HTTP/1.1 ${err.head.status} ${err.head.reason}\r\n`;
  for (const [n, v] of headers) s += `${n}: ${v}\r\n`;
  s += `Content-Length: ${err.body.length}\r\nConnection: close\r\n\r\n`;
  const head = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) head[i] = s.charCodeAt(i) & 0xff;
  const out = new Uint8Array(head.length + err.body.length);
  out.set(head);
  out.set(err.body, head.length);
  return out;
}
