/**
 * `bottle supervise [bottle]`: what the bottles ask their human. Lists the
 * pending requests of every bottle of this user (oldest first, so the newest
 * is last, next to the prompt), answers one by flag (`--approve`, `--deny`,
 * `--answer`), or on a terminal asks about each in turn; `--follow` waits
 * for more and rings when one arrives. Everything the agent wrote is shown
 * made safe for the terminal; `--json` prints the requests as JSON.
 */
import type { Command } from "commander";
import { hostname, userInfo } from "node:os";
import type { CliContext } from "./context.ts";
import { UserError } from "../errors.ts";
import { age, table } from "./table.ts";
import { jsonTerminalSafe, terminalSafe } from "../text/terminal_safe.ts";
import { bottleDir, readRecord } from "../state/bottle_record.ts";
import { checkBottleName, isBottleName } from "../state/bottle_name.ts";
import { type SuperviseQueue, superviseQueueOf } from "../backends/supervise_queue.ts";
import type {
  ApprovalBody,
  PermissionBody,
  QuestionBody,
  SuperviseAnswer,
  SuperviseRequest,
} from "../bundle/supervise/queue_files.ts";
import { checkId } from "../bundle/supervise/queue_files.ts";
import { enginesOf } from "./backends.ts";
import { run } from "../proc/runner.ts";

interface Options {
  approve?: string;
  deny?: string;
  answer?: string[];
  message?: string;
  json?: boolean;
  follow?: boolean;
  all?: boolean;
}

const FOLLOW_POLL_MS = 1000;

export function registerSupervise(program: Command, ctx: CliContext): void {
  program.command("supervise")
    .description("Answer what bottles ask their human (approvals, questions, permission prompts)")
    .argument("[bottle]", "only this bottle's requests")
    .option("--approve <id>", "approve a request (an approval or a permission prompt)")
    .option("--deny <id>", "deny a request")
    .option("--answer <id_and_text...>", "answer a question: --answer ID TEXT")
    .option("-m, --message <text>", "a message for the agent, with --approve or --deny")
    .option("--all", "list answered and expired requests too")
    .option("--json", "print the requests as JSON")
    .option("-f, --follow", "keep waiting for new requests (rings when one arrives)")
    .action(async (bottle: string | undefined, opts: Options) => {
      if (bottle !== undefined) checkBottleName(bottle);
      const queues = await queuesOf(ctx, bottle);
      const action = actionOf(opts);
      if (action) {
        await answer(ctx, queues, action);
        return;
      }
      if (opts.message !== undefined) {
        throw new UserError("bottle supervise: --message goes with --approve or --deny");
      }
      const interactive = ctx.stdinIsTerminal && !opts.json;
      const seen = new Set<string>();
      while (true) {
        const requests = await listAll(ctx, queues);
        const shown = requests.filter((r) => opts.all || isPending(r));
        const fresh = shown.filter((r) => !seen.has(r.id));
        for (const r of fresh) seen.add(r.id);
        if (!opts.follow) {
          print(ctx, shown, opts.json);
          if (shown.length === 0 && !opts.json) ctx.err("bottle: nothing is waiting for an answer");
          if (interactive) await askEach(ctx, queues, shown.filter(isPending));
          return;
        }
        if (fresh.length > 0) {
          print(ctx, fresh, opts.json);
          notify(ctx, fresh.filter(isPending), !opts.json);
          // What was typed before these were on the screen answers none of them.
          if (interactive) await askEach(ctx, queues, fresh.filter(isPending), { discard: true });
        }
        if (await sleep(FOLLOW_POLL_MS, ctx.signal)) return;
      }
    });
}

type Action =
  | { id: string; decision: "approve" | "deny"; message?: string }
  | { id: string; decision: "answer"; text: string };

function actionOf(opts: Options): Action | undefined {
  const given = [opts.approve, opts.deny, opts.answer].filter((v) => v !== undefined);
  if (given.length > 1) {
    throw new UserError("bottle supervise: one of --approve, --deny and --answer at a time");
  }
  const withMessage = opts.message !== undefined ? { message: opts.message } : {};
  if (opts.approve !== undefined) {
    return { id: idOf(opts.approve), decision: "approve", ...withMessage };
  }
  if (opts.deny !== undefined) return { id: idOf(opts.deny), decision: "deny", ...withMessage };
  if (opts.answer !== undefined) {
    if (opts.answer.length !== 2) {
      throw new UserError(
        'bottle supervise: --answer takes the request\'s id and the answer: --answer ID "TEXT"',
      );
    }
    if (opts.message !== undefined) {
      throw new UserError("bottle supervise: --message goes with --approve or --deny");
    }
    return { id: idOf(opts.answer[0]!), decision: "answer", text: opts.answer[1]! };
  }
  return undefined;
}

function idOf(id: string): string {
  try {
    return checkId(id.toLowerCase());
  } catch {
    throw new UserError(
      `bottle supervise: ${
        JSON.stringify(id)
      } is not a request id (16 hex digits, see bottle supervise)`,
    );
  }
}

interface BottleQueue {
  bottle: string;
  queue: SuperviseQueue;
}

/** This user's bottles that have supervise (or the one named). */
async function queuesOf(ctx: CliContext, only?: string): Promise<BottleQueue[]> {
  const names = only !== undefined ? [only] : await bottleNames(ctx.dirs.state);
  let docker: Promise<Awaited<ReturnType<typeof enginesOf>>["docker"]> | undefined;
  const engine = () => (docker ??= enginesOf(ctx).then((e) => e.docker));
  const out: BottleQueue[] = [];
  for (const name of names) {
    const record = await readRecord(bottleDir(ctx.dirs.state, name));
    if (!record) {
      if (only !== undefined) throw new UserError(`No bottle named "${name}" (see bottle ls)`);
      continue;
    }
    const queue = superviseQueueOf(record, engine);
    if (queue) out.push({ bottle: name, queue });
    else if (only !== undefined) {
      throw new UserError(`Bottle "${name}" has no supervise (its agent has no supervise: true)`);
    }
  }
  return out;
}

async function bottleNames(stateRoot: string): Promise<string[]> {
  const names: string[] = [];
  for (const e of await Array.fromAsync(Deno.readDir(`${stateRoot}/bottles`)).catch(() => [])) {
    if (e.isDirectory && isBottleName(e.name)) names.push(e.name);
  }
  return names.sort();
}

/** A request with the bottle whose queue it was read from (what the request file says is not trusted for that). */
type Listed = SuperviseRequest & { source: string };

async function listAll(ctx: CliContext, queues: BottleQueue[]): Promise<Listed[]> {
  const lists = await Promise.all(queues.map(async (q) => {
    try {
      return (await q.queue.list()).map((r) => ({ ...r, source: q.bottle }));
    } catch (err) {
      ctx.err(`bottle: cannot read the requests of ${q.bottle}: ${(err as Error).message}`);
      return [];
    }
  }));
  return lists.flat().sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/** Pending and not yet answered by someone else (the daemon takes an answer in within a second). */
function isPending(r: SuperviseRequest): boolean {
  return r.state === "pending" && !r.answer;
}

async function answer(
  ctx: CliContext,
  queues: BottleQueue[],
  action: Action,
  opts: { shown?: boolean } = {},
): Promise<void> {
  for (const q of queues) {
    const r = (await q.queue.list().catch(() => [])).find((r) => r.id === action.id);
    if (!r) continue;
    const a = answerFor(r, action);
    if (!isPending(r)) throw new UserError(endedAlready(r, q.bottle));
    // By flag, the human may not have read all of it: it is shown whole, before the answer.
    if (!opts.shown) ctx.out(`${describe(r, q.bottle)}\n`);
    if (!(await q.queue.answer(a))) {
      // Taken a moment ago: by another answer, or by the daemon as it gave up waiting.
      const now = (await q.queue.list().catch(() => [])).find((x) => x.id === r.id);
      throw new UserError(
        endedAlready(now && !isPending(now) ? now : { ...r, state: "answered" }, q.bottle),
      );
    }
    const what = a.decision === "answer"
      ? `answered ${JSON.stringify(a.text)}`
      : a.decision === "approve"
      ? "approved"
      : "denied";
    ctx.err(`bottle: ${r.id} (${q.bottle}): ${terminalSafe(what)}`);
    return;
  }
  throw new UserError(`No supervise request ${action.id} is waiting (see bottle supervise)`);
}

function endedAlready(r: SuperviseRequest, bottle: string): string {
  const how = r.answer || r.state === "answered"
    ? "answered already"
    : r.state === "timed-out"
    ? "timed out already: the agent was told nobody answered"
    : "abandoned already: nobody is waiting for its answer";
  return `Request ${r.id} of ${terminalSafe(bottle)} is ${how}`;
}

/** A request whole, as the human reads it before answering: every agent-written part made safe. */
function describe(r: SuperviseRequest, bottle: string): string {
  return `${r.id} from ${terminalSafe(bottle)} (${terminalSafe(r.tool)}):\n  ${requestText(r)}`;
}

/** The answer to write, checked against what the request asked. */
export function answerFor(r: SuperviseRequest, action: Action): SuperviseAnswer {
  const base = { id: r.id, answeredAt: new Date().toISOString(), by: whoAnswers() };
  if (r.kind === "question") {
    if (action.decision !== "answer") {
      throw new UserError(`Request ${r.id} is a question: answer it with --answer ${r.id} TEXT`);
    }
    return { ...base, decision: "answer", text: choose(r.body as QuestionBody, action.text) };
  }
  if (action.decision === "answer") {
    throw new UserError(
      `Request ${r.id} asks for approval: use --approve ${r.id} or --deny ${r.id}`,
    );
  }
  return {
    ...base,
    decision: action.decision,
    ...(action.message !== undefined ? { message: action.message } : {}),
  };
}

/** With choices, the answer is one of them (or its number). */
function choose(q: QuestionBody, text: string): string {
  if (!q.choices?.length) return text;
  const n = Number(text);
  if (Number.isInteger(n) && n >= 1 && n <= q.choices.length) return q.choices[n - 1]!;
  if (q.choices.includes(text)) return text;
  throw new UserError(
    `The answer must be one of the choices (or its number): ${
      q.choices.map((c, i) => `${i + 1}. ${terminalSafe(c)}`).join(", ")
    }`,
  );
}

function whoAnswers(): string {
  let user = "someone";
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry: the uid is enough.
  }
  return `${user}@${hostname()}`;
}

function print(ctx: CliContext, requests: Listed[], json?: boolean): void {
  if (json) {
    for (const { source: _, ...r } of requests) ctx.out(jsonTerminalSafe(JSON.stringify(r)));
    return;
  }
  if (requests.length === 0) return;
  ctx.out(table(
    ["ID", "BOTTLE", "AGE", "TOOL", "STATE", "REQUEST"],
    requests.map((r) => [
      r.id,
      terminalSafe(r.source),
      age(r.createdAt),
      terminalSafe(r.tool),
      r.answer && r.state === "pending" ? "answered" : r.state,
      clip(requestText(r), 160),
    ]),
  ));
}

/** The request in one line, every agent-written part made safe for the terminal. */
export function requestText(r: Pick<SuperviseRequest, "kind" | "body">): string {
  switch (r.kind) {
    case "approval": {
      const b = r.body as ApprovalBody;
      return terminalSafe(
        `${b.action}${b.details ? `: ${b.details}` : ""}${b.why ? ` (why: ${b.why})` : ""}`,
      );
    }
    case "question": {
      const b = r.body as QuestionBody;
      const choices = b.choices?.length
        ? ` [${b.choices.map((c, i) => `${i + 1}. ${c}`).join(" | ")}]`
        : "";
      return terminalSafe(`${b.question}${choices}`);
    }
    case "permission": {
      const b = r.body as PermissionBody;
      return terminalSafe(`${b.tool_name} ${JSON.stringify(b.input)}`);
    }
  }
}

/** Asks about each request on the terminal, in order. */
async function askEach(
  ctx: CliContext,
  queues: BottleQueue[],
  requests: Listed[],
  opts: { discard?: boolean } = {},
): Promise<void> {
  const input = lines ??= new Lines(Deno.stdin.readable);
  if (opts.discard) await input.discard();
  const ask = async (question: string): Promise<string | null> => {
    await Deno.stdout.write(new TextEncoder().encode(`${question} `));
    return await input.next();
  };
  for (const r of requests) {
    const q = queues.find((q) => q.bottle === r.source);
    if (!q || ctx.signal.aborted) return;
    ctx.out(`\n${describe(r, r.source)}`);
    let action: Action | undefined;
    while (!action) {
      const line = await ask(
        r.kind === "question" ? "answer (empty: skip)>" : "[a]pprove, [d]eny or [s]kip?",
      );
      if (line === null) return; // end of input
      try {
        if (r.kind === "question") {
          if (line.trim() === "") break;
          action = { id: r.id, decision: "answer", text: line };
          answerFor(r, action); // checks a choice
        } else {
          const c = line.trim().toLowerCase();
          if (c === "s" || c === "") break;
          if (c !== "a" && c !== "d") continue;
          const message = await ask("message for the agent (optional)>") ?? "";
          action = {
            id: r.id,
            decision: c === "a" ? "approve" : "deny",
            ...(message ? { message } : {}),
          };
        }
      } catch (err) {
        ctx.err(`bottle: ${(err as Error).message}`);
        action = undefined;
      }
    }
    if (!action) continue;
    try {
      await answer(ctx, [q], action, { shown: true });
    } catch (err) {
      ctx.err(`bottle: ${(err as Error).message}`);
    }
  }
}

let lines: Lines | undefined;

/**
 * Lines typed on stdin, in order: what arrives in one read (typed ahead,
 * pasted) is kept for the next question, not dropped.
 */
class Lines {
  #buf = "";
  #reader: ReadableStreamDefaultReader<string>;
  /** A read under way, kept across calls so that nothing it brings is lost. */
  #reading: Promise<ReadableStreamReadResult<string>> | undefined;
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }
  #read(): Promise<ReadableStreamReadResult<string>> {
    return this.#reading ??= this.#reader.read();
  }
  /**
   * Forgets what was typed before now: what was read ahead, and whatever
   * the terminal already holds (it arrives within `quietMs`).
   */
  async discard(quietMs = 100): Promise<void> {
    this.#buf = "";
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const quiet = new Promise<"quiet">((r) => (timer = setTimeout(() => r("quiet"), quietMs)));
      const got = await Promise.race([this.#read(), quiet]);
      clearTimeout(timer);
      if (got === "quiet") return;
      this.#reading = undefined;
      if (got.done) {
        this.#reading = Promise.resolve(got); // the end stays the end
        return;
      }
    }
  }
  /** The next line without its newline; null at the end of input. */
  async next(): Promise<string | null> {
    while (!this.#buf.includes("\n")) {
      const got = await this.#read();
      this.#reading = undefined;
      const { value, done } = got;
      if (done) {
        this.#reading = Promise.resolve(got); // the end stays the end
        const rest = this.#buf;
        this.#buf = "";
        return rest === "" ? null : rest;
      }
      this.#buf += value;
    }
    const i = this.#buf.indexOf("\n");
    const line = this.#buf.slice(0, i).replace(/\r$/, "");
    this.#buf = this.#buf.slice(i + 1);
    return line;
  }
}

/** The terminal bell, and a desktop notification where the host has a way to show one. */
function notify(ctx: CliContext, fresh: Listed[], bell: boolean): void {
  if (fresh.length === 0) return;
  if (bell) ctx.err("\x07");
  const r = fresh[fresh.length - 1]!;
  const title = `bottle: ${terminalSafe(r.source)} asks`;
  // notify-send reads its body as markup.
  const markup = (t: string) =>
    Deno.build.os === "darwin" ? t : t.replaceAll("&", "&amp;").replaceAll("<", "&lt;");
  const body = markup(clip(requestText(r), 200));
  const argv = Deno.build.os === "darwin"
    ? [
      "osascript",
      "-e",
      "on run argv",
      "-e",
      "display notification (item 2 of argv) with title (item 1 of argv)",
      "-e",
      "end run",
      title,
      body,
    ]
    : ["notify-send", "--", title, body];
  // Best effort: no notifier on this host is no error.
  run(argv, { check: false, timeoutMs: 5000 }).catch(() => {});
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** True when the signal ended the wait. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(true);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(false);
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve(true);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
