/**
 * The supervise queue on disk, one directory per bottle, shared by the
 * daemon (in the bundle) and `bottle supervise` (on the host, or through
 * the engine): one file per request, `<id>.json`, written only by the
 * daemon, and at most one `<id>.answer.json`, written only by the human's
 * side. Each writer owns its files, every write is atomic (a temporary
 * file renamed, or linked into place so a second answer cannot replace the
 * first). The answer's slot is first-wins for the daemon too: a request
 * that ends unanswered (timed out, abandoned) first links a marker there,
 * so an answer typed a moment too late is refused, never reported as
 * taken. Closed requests stay for review up to `KEPT_CLOSED` (the audit log
 * has every one). The agent never sees this directory; it only has the
 * daemon's tools.
 */
import { join } from "node:path";
import { writePrivateFile } from "../../state/private_files.ts";

/** Where the queue is in the bundle (a host dir or an engine volume, mounted here). */
export const QUEUE_IN_BUNDLE = "/var/lib/bottle/supervise";

export type RequestKind = "approval" | "question" | "permission";
/** pending: waiting for a human; the rest are final. */
export type RequestState = "pending" | "answered" | "timed-out" | "abandoned";

export interface SuperviseRequest {
  v: 1;
  id: string;
  bottle: string;
  kind: RequestKind;
  /** The MCP tool the agent called. */
  tool: string;
  createdAt: string;
  /** When the agent is told nobody answered. */
  expiresAt: string;
  /** What the agent sent, as it sent it (shown to the human made safe for the terminal). */
  body: ApprovalBody | QuestionBody | PermissionBody;
  state: RequestState;
  /** Set once the request is final. */
  closedAt?: string;
  /** Why it ended without an answer (timed-out, abandoned). */
  reason?: string;
  answer?: SuperviseAnswer;
}

export interface ApprovalBody {
  action: string;
  details?: string;
  why?: string;
}
export interface QuestionBody {
  question: string;
  choices?: string[];
}
/** Claude Code's `--permission-prompt-tool` input: the tool it wants to run and its input. */
export interface PermissionBody {
  tool_name: string;
  input: Record<string, unknown>;
  tool_use_id?: string;
}

export interface SuperviseAnswer {
  id: string;
  /** approve/deny answer an approval or a permission prompt; answer a question. */
  decision: "approve" | "deny" | "answer";
  message?: string;
  /** The answer to a question. */
  text?: string;
  answeredAt: string;
  /** Who answered (user@host), for the audit log. */
  by: string;
}

/** 64 random bits: an id is never reused, so an old answer can never match a new request. */
export const ID_PATTERN = /^[0-9a-f]{16}$/;
const REQUEST_FILE = /^([0-9a-f]{16})\.json$/;
const QUEUE_FILE = /^[0-9a-f]{16}(\.answer)?\.json$/;

/** Closed requests kept in the queue for `bottle supervise --all`; older ones are pruned. */
export const KEPT_CLOSED = 200;

export function newRequestId(): string {
  return [...crypto.getRandomValues(new Uint8Array(8))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * What the daemon links into a request's answer slot when the request
 * ends without an answer: it takes the slot, so no answer can come after.
 */
export interface ClosedMarker {
  id: string;
  closed: "timed-out" | "abandoned";
}

export function requestFile(dir: string, id: string): string {
  return join(dir, `${checkId(id)}.json`);
}

export function answerFile(dir: string, id: string): string {
  return join(dir, `${checkId(id)}.answer.json`);
}

export function checkId(id: string): string {
  if (!ID_PATTERN.test(id)) throw new Error(`Not a supervise request id: ${JSON.stringify(id)}`);
  return id;
}

/** The daemon's write of its own request file (whole, atomically replaced). */
export async function writeRequest(dir: string, r: SuperviseRequest): Promise<void> {
  await writePrivateFile(requestFile(dir, r.id), JSON.stringify(r, null, 2) + "\n");
}

/**
 * A new request's first write: linked into place, so it fails rather than
 * replace a file of that name (and whatever answer is beside it). False
 * when the id is taken.
 */
export function createRequest(dir: string, r: SuperviseRequest): Promise<boolean> {
  return linkNew(dir, requestFile(dir, r.id), JSON.stringify(r, null, 2) + "\n");
}

/**
 * The human's answer: written under a temporary name, then linked to its
 * final name, which fails if an answer (or the daemon's closed marker) is
 * already there. Returns false then (the first one stands).
 */
export function writeAnswer(dir: string, a: SuperviseAnswer): Promise<boolean> {
  return linkNew(dir, answerFile(dir, a.id), JSON.stringify(a, null, 2) + "\n");
}

/** The daemon's claim of an unanswered request's answer slot; false when an answer came first. */
export function writeClosedMarker(dir: string, m: ClosedMarker): Promise<boolean> {
  return linkNew(dir, answerFile(dir, m.id), JSON.stringify(m) + "\n");
}

async function linkNew(dir: string, final: string, text: string): Promise<boolean> {
  const tmp = join(dir, `.${crypto.randomUUID()}.tmp`);
  await writePrivateFile(tmp, text);
  try {
    await Deno.link(tmp, final);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return false;
    throw err;
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

/**
 * Removes the oldest closed requests (and their answers) beyond `keep`.
 * Pending ones are never touched.
 */
export async function pruneClosed(dir: string, keep = KEPT_CLOSED): Promise<number> {
  const closed = (await readQueueDir(dir)).filter((r) => r.state !== "pending");
  const old = closed.slice(0, Math.max(0, closed.length - keep));
  for (const r of old) {
    await Deno.remove(answerFile(dir, r.id)).catch(() => {});
    await Deno.remove(requestFile(dir, r.id)).catch(() => {});
  }
  return old.length;
}

/** Reads every request of a queue dir, with its answer where one was written. */
export async function readQueueDir(dir: string): Promise<SuperviseRequest[]> {
  const files = new Map<string, string>();
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && QUEUE_FILE.test(e.name)) {
        files.set(e.name, await Deno.readTextFile(join(dir, e.name)).catch(() => ""));
      }
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  return parseQueueFiles(files);
}

/**
 * The requests among a queue's files (name -> content), each with the
 * answer the human wrote where the daemon has not taken it in yet. A file
 * that does not parse is skipped: the reader may be the host, and a request
 * file is agent-influenced data.
 */
export function parseQueueFiles(files: Map<string, string>): SuperviseRequest[] {
  const out: SuperviseRequest[] = [];
  for (const [name, text] of files) {
    const m = REQUEST_FILE.exec(name);
    if (!m) continue;
    const r = parseRequest(text);
    if (!r || r.id !== m[1]) continue;
    if (!r.answer && r.state === "pending") {
      const slot = files.get(`${r.id}.answer.json`) ?? "";
      const a = parseAnswer(slot);
      const closed = parseClosedMarker(slot);
      if (a && a.id === r.id) r.answer = a;
      // Ended a moment ago; the daemon is rewriting its file.
      else if (closed && closed.id === r.id) r.state = closed.closed;
    }
    out.push(r);
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

export function parseRequest(text: string): SuperviseRequest | undefined {
  try {
    const r = JSON.parse(text) as SuperviseRequest;
    const ok = r && r.v === 1 && typeof r.id === "string" && ID_PATTERN.test(r.id) &&
      typeof r.bottle === "string" && typeof r.tool === "string" &&
      ["approval", "question", "permission"].includes(r.kind) &&
      typeof r.createdAt === "string" && typeof r.expiresAt === "string" &&
      ["pending", "answered", "timed-out", "abandoned"].includes(r.state) &&
      bodyFits(r.kind, r.body);
    return ok ? r : undefined;
  } catch {
    return undefined;
  }
}

/** The body has the shape its kind says: what the CLI shows can be read without surprises. */
function bodyFits(kind: RequestKind, body: unknown): boolean {
  if (typeof body !== "object" || body === null) return false;
  const b = body as Record<string, unknown>;
  const optString = (k: string) => b[k] === undefined || typeof b[k] === "string";
  switch (kind) {
    case "approval":
      return typeof b.action === "string" && optString("details") && optString("why");
    case "question":
      return typeof b.question === "string" &&
        (b.choices === undefined ||
          (Array.isArray(b.choices) && b.choices.every((c) => typeof c === "string")));
    case "permission":
      return typeof b.tool_name === "string" && typeof b.input === "object" &&
        b.input !== null && !Array.isArray(b.input) && optString("tool_use_id");
  }
}

export function parseClosedMarker(text: string): ClosedMarker | undefined {
  try {
    const m = JSON.parse(text) as ClosedMarker;
    return m && typeof m.id === "string" && (m.closed === "timed-out" || m.closed === "abandoned")
      ? m
      : undefined;
  } catch {
    return undefined;
  }
}

export function parseAnswer(text: string): SuperviseAnswer | undefined {
  try {
    const a = JSON.parse(text) as SuperviseAnswer;
    const ok = a && typeof a.id === "string" &&
      ["approve", "deny", "answer"].includes(a.decision) &&
      (a.message === undefined || typeof a.message === "string") &&
      (a.text === undefined || typeof a.text === "string");
    return ok ? a : undefined;
  } catch {
    return undefined;
  }
}
