/**
 * One request's life in the daemon: written to the queue as pending,
 * logged, then waited on until the human's answer appears, its time runs
 * out, or the agent goes away; the request file then says how it ended and
 * the audit log has the line. A restarted daemon closes what its earlier
 * run left pending: nobody waits for those answers any more.
 */
import {
  answerFile,
  createRequest,
  newRequestId,
  parseAnswer,
  type PermissionBody,
  pruneClosed,
  readQueueDir,
  type RequestKind,
  type SuperviseAnswer,
  type SuperviseRequest,
  writeClosedMarker,
  writeRequest,
} from "./queue_files.ts";
import type { AuditLog } from "../audit_log.ts";

export type Outcome =
  | { kind: "answered"; answer: SuperviseAnswer }
  | { kind: "timed-out"; after: string }
  | { kind: "abandoned" };

const POLL_MS = 200;

/** The most a request may hold (its JSON): more is no question a human reads. */
export const MAX_BODY_BYTES = 128 * 1024;
/** Requests one bottle may have waiting at once. */
export const MAX_PENDING = 32;

/** A request refused before it reaches the human; its message is for the agent. */
export class RequestRefused extends Error {}

export class Supervisor {
  #pending = 0;

  constructor(
    readonly queueDir: string,
    readonly bottle: string,
    readonly timeoutMs: number,
    private readonly audit: AuditLog,
  ) {}

  /** Marks what an earlier daemon left pending as abandoned. */
  async closeLeftovers(): Promise<number> {
    let n = 0;
    for (const r of await readQueueDir(this.queueDir)) {
      if (r.state !== "pending") continue;
      // Whoever asked is gone: an answer now or later reaches nobody.
      await writeClosedMarker(this.queueDir, { id: r.id, closed: "abandoned" });
      await this.close(r, "abandoned", "the bundle restarted while it waited");
      n++;
    }
    return n;
  }

  /**
   * Queues a request and waits for its outcome. `tick` is called every few
   * seconds while it waits (the MCP progress notifications).
   */
  async ask(
    kind: RequestKind,
    tool: string,
    body: SuperviseRequest["body"],
    signal: AbortSignal,
    tick: (waitedMs: number) => Promise<void> | void = () => {},
  ): Promise<Outcome> {
    const size = new TextEncoder().encode(JSON.stringify(body)).length;
    if (size > MAX_BODY_BYTES) {
      throw new RequestRefused(
        `The request is too large to show a human (${size} bytes, at most ${MAX_BODY_BYTES}): say it in less`,
      );
    }
    if (this.#pending >= MAX_PENDING) {
      throw new RequestRefused(
        `${MAX_PENDING} requests are already waiting for the human: wait for their answers first`,
      );
    }
    this.#pending++;
    try {
      return await this.#ask(kind, tool, body, signal, tick);
    } finally {
      this.#pending--;
    }
  }

  async #ask(
    kind: RequestKind,
    tool: string,
    body: SuperviseRequest["body"],
    signal: AbortSignal,
    tick: (waitedMs: number) => Promise<void> | void,
  ): Promise<Outcome> {
    const now = Date.now();
    let r: SuperviseRequest | undefined;
    for (let attempt = 0; !r && attempt < 3; attempt++) {
      const candidate: SuperviseRequest = {
        v: 1,
        id: newRequestId(),
        bottle: this.bottle,
        kind,
        tool,
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(now + this.timeoutMs).toISOString(),
        body,
        state: "pending",
      };
      if (await createRequest(this.queueDir, candidate)) r = candidate;
    }
    if (!r) throw new Error("Cannot make a new supervise request id");
    this.audit.writeEvent("supervise", {
      event: "request",
      id: r.id,
      kind,
      tool,
      text: summary(r),
    });
    let lastTick = now;
    try {
      while (true) {
        const answer = await this.#readAnswer(r.id);
        if (answer) return await this.#answered(r, answer);
        if (signal.aborted) {
          return await this.#unanswered(r, "abandoned", "the agent stopped waiting") ??
            { kind: "abandoned" };
        }
        if (Date.now() >= now + this.timeoutMs) {
          const after = duration(this.timeoutMs);
          return await this.#unanswered(r, "timed-out", `no answer within ${after}`) ??
            { kind: "timed-out", after };
        }
        if (Date.now() - lastTick >= TICK_MS) {
          lastTick = Date.now();
          await Promise.resolve(tick(lastTick - now)).catch(() => {});
        }
        await sleep(POLL_MS, signal);
      }
    } catch (err) {
      // Whatever broke the wait, the request must not stay pending for nobody.
      await this.#unanswered(r, "abandoned", `supervise failed: ${(err as Error).message}`)
        .catch(() => {});
      throw err;
    }
  }

  async #answered(r: SuperviseRequest, answer: SuperviseAnswer): Promise<Outcome> {
    await this.close(r, "answered", undefined, answer);
    return { kind: "answered", answer };
  }

  /**
   * Ends `r` unanswered, once its answer slot is the daemon's: if an answer
   * took the slot first, that answer stands and is returned instead.
   */
  async #unanswered(
    r: SuperviseRequest,
    state: "timed-out" | "abandoned",
    reason: string,
  ): Promise<Outcome | undefined> {
    if (!(await writeClosedMarker(this.queueDir, { id: r.id, closed: state }))) {
      const answer = await this.#readAnswer(r.id);
      if (answer) return await this.#answered(r, answer);
    }
    await this.close(r, state, reason);
    return undefined;
  }

  async close(
    r: SuperviseRequest,
    state: SuperviseRequest["state"],
    reason?: string,
    answer?: SuperviseAnswer,
  ): Promise<void> {
    const closed: SuperviseRequest = {
      ...r,
      state,
      closedAt: new Date().toISOString(),
      ...(reason ? { reason } : {}),
      ...(answer ? { answer } : {}),
    };
    await writeRequest(this.queueDir, closed);
    await pruneClosed(this.queueDir).catch(() => {});
    this.audit.writeEvent("supervise", {
      event: state,
      id: r.id,
      kind: r.kind,
      tool: r.tool,
      ...(answer
        ? {
          decision: answer.decision,
          by: answer.by,
          ...(answer.message ? { message: answer.message } : {}),
          ...(answer.text !== undefined ? { answer: answer.text } : {}),
        }
        : {}),
      ...(reason ? { reason } : {}),
    });
  }

  async #readAnswer(id: string): Promise<SuperviseAnswer | undefined> {
    let text: string;
    try {
      text = await Deno.readTextFile(answerFile(this.queueDir, id));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw err;
    }
    const a = parseAnswer(text);
    return a && a.id === id ? a : undefined;
  }
}

/** How often a waiting call tells the client it is still alive. */
export const TICK_MS = 10_000;

/** One line for the audit log: what was asked. */
export function summary(r: Pick<SuperviseRequest, "kind" | "body">): string {
  switch (r.kind) {
    case "approval": {
      const b = r.body as { action: string };
      return b.action;
    }
    case "question": {
      const b = r.body as { question: string };
      return b.question;
    }
    case "permission": {
      const b = r.body as PermissionBody;
      return `${b.tool_name} ${JSON.stringify(b.input)}`;
    }
  }
}

export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m} min` : `${Math.round(m / 60)} h`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
