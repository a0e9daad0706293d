/**
 * The supervise queue on disk, one directory per bottle, shared by the
 * daemon (in the bundle) and `bottle supervise` (on the host, or through
 * the engine): one file per request, `<id>.json`, written only by the
 * daemon, and at most one `<id>.answer.json`, written only by the human's
 * side. Each writer owns its files, every write is atomic (a temporary
 * file renamed, or linked into place so a second answer cannot replace the
 * first), and nothing is deleted while the bottle lives: answered requests
 * stay for the audit. The agent never sees this directory; it only has the
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

export const ID_PATTERN = /^[0-9a-f]{8}$/;

export function newRequestId(): string {
  return [...crypto.getRandomValues(new Uint8Array(4))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
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
 * The human's answer: written under a temporary name, then linked to its
 * final name, which fails if an answer is already there. Returns false
 * then (the first answer stands).
 */
export async function writeAnswer(dir: string, a: SuperviseAnswer): Promise<boolean> {
  const final = answerFile(dir, a.id);
  const tmp = join(dir, `.${a.id}.answer.${crypto.randomUUID()}.tmp`);
  await writePrivateFile(tmp, JSON.stringify(a, null, 2) + "\n");
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

/** Reads every request of a queue dir, with its answer where one was written. */
export async function readQueueDir(dir: string): Promise<SuperviseRequest[]> {
  const files = new Map<string, string>();
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && /^[0-9a-f]{8}(\.answer)?\.json$/.test(e.name)) {
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
    const m = /^([0-9a-f]{8})\.json$/.exec(name);
    if (!m) continue;
    const r = parseRequest(text);
    if (!r || r.id !== m[1]) continue;
    if (!r.answer) {
      const a = parseAnswer(files.get(`${r.id}.answer.json`) ?? "");
      if (a && a.id === r.id) r.answer = a;
    }
    out.push(r);
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

export function parseRequest(text: string): SuperviseRequest | undefined {
  try {
    const r = JSON.parse(text) as SuperviseRequest;
    const ok = r && r.v === 1 && typeof r.id === "string" && ID_PATTERN.test(r.id) &&
      typeof r.bottle === "string" && ["approval", "question", "permission"].includes(r.kind) &&
      typeof r.createdAt === "string" && typeof r.expiresAt === "string" &&
      ["pending", "answered", "timed-out", "abandoned"].includes(r.state) &&
      typeof r.body === "object" && r.body !== null;
    return ok ? r : undefined;
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
