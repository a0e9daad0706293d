/**
 * TEST-ONLY scripted Anthropic Messages API over HTTPS, the model behind the
 * real Claude Code in integration tests. It has its own test CA (minted
 * with src/tls/ca.ts; a bottle trusts it through BOTTLE_UPSTREAM_CA_CERTS,
 * the documented upstream-CA option) and answers for made-up names.
 *
 * A script is a list of turns. Each turn answers the next agent-loop call
 * of `POST /v1/messages` (one that offers tools) with a streamed (SSE)
 * message of text and/or `tool_use` blocks, events spaced by `gapMs`.
 * Claude Code's side calls (no tools offered: quota probes, summaries) are
 * answered with a short text message and recorded, never consuming a turn.
 * Every request is recorded (headers, body, the tool results sent back).
 *
 * What the script did not expect fails the test with the request shown
 * (`assertDone`): an agent-loop call after the last turn, a request that is
 * not valid Messages API input (checked against the API's contract: model,
 * max_tokens, messages of known roles starting with the user's, every
 * tool_use answered by a tool_result in the next user turn), or a turn's own `expect` check throwing. Unknown
 * endpoints are answered 404 in the API's error shape at once, so Claude
 * Code does not stall on them, and listed in `unknown`.
 */
import { serveTls } from "./tls_server.ts";

export interface ToolUse {
  name: string;
  input: Record<string, unknown>;
  /** Default: `toolu_bottle_<turn>_<n>`. */
  id?: string;
}

export interface Turn {
  /** Text streamed as one block, a `text_delta` event per chunk. */
  text?: string[];
  /** Tool calls after the text; the message then stops with `tool_use`. */
  toolUses?: ToolUse[];
  /** Milliseconds between streamed events (default 0). */
  gapMs?: number;
  /** Checks the call before it is answered; a throw fails the script. */
  expect?: (call: MessagesCall) => void;
  /**
   * Answer with this API error instead of a message (e.g. 400
   * invalid_request_error); the client's retries get it too, until more
   * turns are pushed.
   */
  error?: { status: number; type: string; message: string };
}

export interface ApiRequest {
  method: string;
  path: string;
  search: string;
  headers: Record<string, string>;
  body: unknown;
}

export interface ToolResult {
  toolUseId: string;
  isError: boolean;
  /** The result's text (text blocks joined). */
  text: string;
}

export interface MessagesCall {
  request: ApiRequest;
  /** Index into the script; undefined for a side call. */
  turn?: number;
  stream: boolean;
  tools: string[];
  /** Tool results in the last user message. */
  toolResults: ToolResult[];
  /** When each SSE event of the answer was written (performance.now()). */
  sentAt: number[];
}

export interface AnthropicApi extends AsyncDisposable {
  readonly port: number;
  readonly caFile: string;
  /** `https://<name>:<port>`. */
  url(name: string): string;
  readonly requests: ApiRequest[];
  readonly calls: MessagesCall[];
  /** Requests to endpoints the fake does not serve. */
  readonly unknown: ApiRequest[];
  /** Appends turns to the script. */
  push(...turns: Turn[]): void;
  /** Throws unless every turn was used and nothing unexpected happened. */
  assertDone(): void;
  close(): Promise<void>;
}

const KNOWN_ROLES = new Set(["user", "assistant", "system"]);

export async function startAnthropicApi(opts: {
  names: string[];
  script?: Turn[];
  /** Listen address: a docker bridge's gateway for bottles; loopback by default. */
  hostname?: string;
}): Promise<AnthropicApi> {
  const requests: ApiRequest[] = [];
  const calls: MessagesCall[] = [];
  const unknown: ApiRequest[] = [];
  const problems: string[] = [];
  const script = [...(opts.script ?? [])];
  let next = 0;

  const fail = (why: string, req: ApiRequest, status = 400): Response => {
    problems.push(`${why}\n  request: ${show(req)}`);
    return apiError(status, "invalid_request_error", `bottle fake API: ${why}`);
  };

  const handler = async (r: Request): Promise<Response> => {
    const url = new URL(r.url);
    const text = await r.text();
    const req: ApiRequest = {
      method: r.method,
      path: url.pathname,
      search: url.search,
      headers: Object.fromEntries(r.headers),
      body: parseJson(text),
    };
    requests.push(req);
    // Gateways may serve the API under a path prefix: match on the tail.
    if (r.method === "POST" && url.pathname.endsWith("/v1/messages")) {
      const problem = messagesProblem(req.body);
      if (problem) return fail(`not a valid Messages API request: ${problem}`, req);
      const body = req.body as MessagesBody;
      const tools = (body.tools ?? []).map((t) => t.name);
      const call: MessagesCall = {
        request: req,
        stream: body.stream === true,
        tools,
        toolResults: toolResultsOf(body),
        sentAt: [],
      };
      calls.push(call);
      if (tools.length === 0) return sideAnswer(call, body);
      // A client retries an error (Claude Code sometimes with a changed
      // request): until the script has more turns, they get it too.
      const errored = script[next - 1];
      if (next === script.length && errored?.error) {
        call.turn = next - 1;
        return apiError(errored.error.status, errored.error.type, errored.error.message);
      }
      const turn = script[next];
      if (!turn) return fail(`agent-loop call ${next + 1}, but the script has ${next} turns`, req);
      call.turn = next++;
      try {
        turn.expect?.(call);
      } catch (err) {
        return fail(`turn ${call.turn + 1} check failed: ${(err as Error).message}`, req);
      }
      if (turn.error) return apiError(turn.error.status, turn.error.type, turn.error.message);
      return answer(call, body, turn);
    }
    unknown.push(req);
    console.error(
      `fake Anthropic API: no such endpoint, answered 404: ${r.method} ${
        JSON.stringify(url.pathname)
      }`,
    );
    return apiError(404, "not_found_error", `bottle fake API: no ${r.method} ${url.pathname}`);
  };

  const server = await serveTls(
    {
      names: opts.names,
      caName: "bottle test Anthropic API CA",
      ...opts.hostname ? { hostname: opts.hostname } : {},
    },
    handler,
  );
  const { port, caFile } = server;
  const close = () => server.close();
  return {
    port,
    caFile,
    url: (name) => `https://${name}:${port}`,
    requests,
    calls,
    unknown,
    push: (...turns) => void script.push(...turns),
    assertDone() {
      const left = script.length - next;
      const all = [
        ...problems,
        ...(left > 0 ? [`${left} of ${script.length} turns were never asked for`] : []),
      ];
      if (all.length > 0) {
        throw new Error(
          `fake Anthropic API:\n${all.join("\n")}\n  requests seen:\n${
            requests.map((q) => `    ${q.method} ${q.path}${q.search}`).join("\n")
          }`,
        );
      }
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

interface MessagesBody {
  model: string;
  max_tokens: number;
  stream?: boolean;
  messages: { role: string; content: string | ContentBlock[] }[];
  tools?: { name: string }[];
}

interface ContentBlock {
  type: string;
  id?: string;
  tool_use_id?: string;
  is_error?: boolean;
  content?: string | { type: string; text?: string }[];
}

/** Why `body` is not Messages API input, or undefined when it is. */
function messagesProblem(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null) return "the body is not a JSON object";
  const b = body as Partial<MessagesBody>;
  if (typeof b.model !== "string" || b.model === "") return "no model";
  if (!Number.isInteger(b.max_tokens) || b.max_tokens! < 1) {
    return "max_tokens is not a positive integer";
  }
  if (!Array.isArray(b.messages) || b.messages.length === 0) return "no messages";
  if (b.stream !== undefined && typeof b.stream !== "boolean") return "stream is not a boolean";
  if (b.tools !== undefined && !Array.isArray(b.tools)) return "tools is not a list";
  // Consecutive turns of one role are merged by the API; `system` messages
  // may sit between turns (Claude Code sends them). A tool_use must be
  // answered by the next user turn.
  let open = new Set<string>();
  let seenUser = false;
  for (const [i, m] of b.messages.entries()) {
    if (!KNOWN_ROLES.has(m.role)) return `messages[${i}] has role ${JSON.stringify(m.role)}`;
    const blocks = typeof m.content === "string" ? [] : m.content;
    if (!Array.isArray(blocks)) return `messages[${i}].content is neither text nor blocks`;
    if (m.role === "system") continue;
    if (!seenUser && m.role !== "user") return "the first turn is not the user's";
    seenUser = true;
    if (m.role === "user") {
      for (const bl of blocks.filter((x) => x.type === "tool_result")) {
        if (!open.has(bl.tool_use_id ?? "")) {
          return `messages[${i}] answers tool_use ${bl.tool_use_id}, which was not asked for`;
        }
        open.delete(bl.tool_use_id!);
      }
      if (open.size > 0) return `messages[${i}] leaves tool_use ${[...open].join(", ")} unanswered`;
    } else {
      open = new Set(blocks.filter((x) => x.type === "tool_use").map((x) => x.id ?? ""));
    }
  }
  return undefined;
}

function toolResultsOf(body: MessagesBody): ToolResult[] {
  const last = body.messages.at(-1)!;
  if (typeof last.content === "string") return [];
  return last.content.filter((b) => b.type === "tool_result").map((b) => ({
    toolUseId: b.tool_use_id ?? "",
    isError: b.is_error === true,
    text: typeof b.content === "string"
      ? b.content
      : (b.content ?? []).map((c) => c.text ?? "").join(""),
  }));
}

/** The SSE events of one assistant message, in the API's streaming format. */
function messageEvents(body: MessagesBody, turnIndex: number, turn: Turn): object[] {
  const id = `msg_bottle_${turnIndex}`;
  const events: object[] = [{
    type: "message_start",
    message: {
      id,
      type: "message",
      role: "assistant",
      model: body.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 10, output_tokens: 1 },
    },
  }];
  let index = 0;
  if (turn.text && turn.text.length > 0) {
    events.push({ type: "content_block_start", index, content_block: { type: "text", text: "" } });
    for (const chunk of turn.text) {
      events.push({
        type: "content_block_delta",
        index,
        delta: { type: "text_delta", text: chunk },
      });
    }
    events.push({ type: "content_block_stop", index });
    index++;
  }
  for (const [n, use] of (turn.toolUses ?? []).entries()) {
    const toolId = use.id ?? `toolu_bottle_${turnIndex}_${n}`;
    events.push({
      type: "content_block_start",
      index,
      content_block: { type: "tool_use", id: toolId, name: use.name, input: {} },
    });
    events.push({
      type: "content_block_delta",
      index,
      delta: { type: "input_json_delta", partial_json: JSON.stringify(use.input) },
    });
    events.push({ type: "content_block_stop", index });
    index++;
  }
  const stop = (turn.toolUses ?? []).length > 0 ? "tool_use" : "end_turn";
  events.push({
    type: "message_delta",
    delta: { stop_reason: stop, stop_sequence: null },
    usage: { output_tokens: 20 },
  });
  events.push({ type: "message_stop" });
  return events;
}

function answer(call: MessagesCall, body: MessagesBody, turn: Turn): Response {
  const events = messageEvents(body, call.turn!, turn);
  if (!call.stream) return Response.json(collapse(events));
  const enc = new TextEncoder();
  const gap = turn.gapMs ?? 0;
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      for (const [i, e] of events.entries()) {
        if (i > 0 && gap > 0) await new Promise((r) => setTimeout(r, gap));
        const type = (e as { type: string }).type;
        controller.enqueue(enc.encode(`event: ${type}\ndata: ${JSON.stringify(e)}\n\n`));
        call.sentAt.push(performance.now());
      }
      controller.close();
    },
  });
  return new Response(stream, {
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
  });
}

/** A side call (no tools offered) gets a one-word text answer. */
function sideAnswer(call: MessagesCall, body: MessagesBody): Response {
  return answer(call, body, { text: ["ok"] });
}

/** The non-streaming message the events describe. */
function collapse(events: object[]): object {
  const start = events[0] as { message: Record<string, unknown> };
  const content: Record<string, unknown>[] = [];
  let stop: unknown = null;
  for (const e of events as Record<string, unknown>[]) {
    if (e.type === "content_block_start") content.push({ ...(e.content_block as object) });
    if (e.type === "content_block_delta") {
      const block = content[e.index as number]!;
      const delta = e.delta as { type: string; text?: string; partial_json?: string };
      if (delta.type === "text_delta") block.text = `${block.text ?? ""}${delta.text}`;
      else block.input = JSON.parse(delta.partial_json!);
    }
    if (e.type === "message_delta") stop = (e.delta as { stop_reason: unknown }).stop_reason;
  }
  return {
    ...start.message,
    content,
    stop_reason: stop,
    usage: { input_tokens: 10, output_tokens: 20 },
  };
}

function apiError(status: number, type: string, message: string): Response {
  return Response.json({ type: "error", error: { type, message } }, { status });
}

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function show(req: ApiRequest): string {
  const body = JSON.stringify(req.body) ?? "";
  return `${req.method} ${req.path}${req.search} ${
    body.length > 2000 ? `${body.slice(0, 2000)}…` : body
  }`;
}
