/**
 * Builds an image on demand, cached by a hash of its build context: a warm
 * start finds the tag and skips `docker build`. While it builds, progress
 * says which step it is at (a status line the CLI keeps in place on a
 * terminal); the full log is kept in the state dir (the last
 * `KEPT_BUILD_LOGS` builds), and a failed build says which image, the end
 * of its log and where the whole log is.
 */
import { join } from "node:path";
import type { DockerCli } from "../engine/docker_cli.ts";
import { CommandError } from "../proc/runner.ts";
import { redact } from "../proc/secrets.ts";
import { CONTEXT_HASH, MANAGED } from "../labels.ts";
import { contextHash } from "./context_hash.ts";
import { UserError } from "../errors.ts";
import { terminalSafe } from "../text/terminal_safe.ts";
import { makePrivateDir, writePrivateFile } from "../state/private_files.ts";

export interface ProgressOptions {
  /**
   * A status (the step a long operation is at): shown in place of the last
   * status on a terminal, with the time since the first; one line, no
   * control characters. The next plain message ends it.
   */
  transient?: boolean;
}

/** Where progress goes; a caller that ignores `opts` shows every message as a line. */
export type Progress = (message: string, opts?: ProgressOptions) => void;

export interface ImageBuild {
  /** What the image is, for messages ("agent image", "bundle image"). */
  what: string;
  repository: string;
  contextDir: string;
  dockerfile: string;
  buildArgs: Record<string, string>;
  /** Build arguments that do not change the cache key (extra CAs are trust, not content). */
  volatileBuildArgs?: Record<string, string>;
}

export interface BuildOptions {
  progress: Progress;
  signal?: AbortSignal;
  /** Rebuild even if the tag exists. */
  force?: boolean;
  /** Only look: an image that is not built throws `ImageNotBuilt` instead of building. */
  lookOnly?: boolean;
  /** Where each build's full log is kept (see `buildLogDir`); without it, none is. */
  logDir?: string;
}

/** `lookOnly` found no image for the build context. */
export class ImageNotBuilt extends Error {
  override name = "ImageNotBuilt";
}

/** How many build logs `logDir` keeps: the newest. */
export const KEPT_BUILD_LOGS = 10;

/** The longest a step's instruction is shown. */
const STEP_CHARS = 100;

/** Lines of a failed build's log its error shows. */
const TAIL_LINES = 15;

/** The build log dir under bottle's state dir. */
export function buildLogDir(stateDir: string): string {
  return join(stateDir, "build-logs");
}

export async function ensureImage(
  docker: DockerCli,
  b: ImageBuild,
  opts: BuildOptions,
): Promise<string> {
  const hash = await contextHash(b.contextDir, [b.dockerfile], b.buildArgs);
  const tag = `${b.repository}:${hash.slice(0, 16)}`;
  if (!opts.force && await docker.imageExists(tag)) return tag;
  if (opts.lookOnly) throw new ImageNotBuilt(`${b.what} ${tag} is not built`);

  const started = performance.now();
  const building = `building ${b.what} ${tag}`;
  opts.progress(building, { transient: true });
  const args = [
    "build",
    // The legacy builder keeps a failed step's container otherwise (BuildKit has none).
    "--force-rm",
    "--tag",
    tag,
    "--file",
    b.dockerfile,
    "--label",
    `${MANAGED}=true`,
    "--label",
    `${CONTEXT_HASH}=${hash}`,
  ];
  const all = { ...b.buildArgs, ...b.volatileBuildArgs };
  // Values go through the docker client's env (`--build-arg NAME`), keeping
  // long PEM blobs and anything sensitive off argv.
  for (const k of Object.keys(all)) args.push("--build-arg", k);
  args.push(b.contextDir);

  const log: string[] = [];
  const steps = new Set<string>();
  const onLine = (line: string) => {
    log.push(line);
    const step = buildStep(line);
    if (step && !steps.has(step.key)) {
      steps.add(step.key);
      // The tag was in the first status; a terminal's one line has room for the step.
      opts.progress(`building ${b.what}: ${step.text}`, { transient: true });
    }
  };
  const ended = (how: string) =>
    opts.progress(`${building}: ${how} after ${formatElapsed(performance.now() - started)}`);
  let status: { code: number; timedOut: boolean };
  try {
    const child = docker.spawn(args, { env: all, ...(opts.signal ? { signal: opts.signal } : {}) });
    [status] = await Promise.all([
      child.status,
      eachLine(child.process.stdout, onLine),
      eachLine(child.process.stderr, onLine),
    ]);
  } catch (err) {
    ended(opts.signal?.aborted ? "cancelled" : "failed");
    throw err;
  }
  const kept = opts.logDir ? await keepLog(opts.logDir, tag, log) : undefined;
  if (status.code === 0) {
    opts.progress(`built ${b.what} ${tag} in ${formatElapsed(performance.now() - started)}`);
    return tag;
  }
  ended(opts.signal?.aborted ? "cancelled" : "failed");
  if (opts.signal?.aborted) throw opts.signal.reason;
  const err = new CommandError([docker.bin, ...args], status.code, "", status.timedOut);
  const tail = log.slice(-TAIL_LINES).map((l) => `  ${redact(terminalSafe(shown(l)))}`);
  const where = kept === undefined
    ? ""
    : typeof kept === "string"
    ? `\nfull log: ${kept}`
    : `\nthe full log could not be kept: ${kept.error}`;
  throw new UserError(
    `Cannot build the ${b.what} ${tag}: ${err.message}${
      tail.length ? `; its last lines:\n${tail.join("\n")}` : ""
    }${where}`,
  );
}

/** A build step, from the legacy builder's `Step 5/12 : RUN ...` or BuildKit's `#7 [stage 5/12] RUN ...`. */
export function buildStep(line: string): { key: string; text: string } | undefined {
  const legacy = /^Step (\d+)\/(\d+) : (.*)$/.exec(line);
  if (legacy) {
    const [, n, of, what] = legacy;
    return { key: `step ${n}/${of}`, text: `step ${n}/${of}: ${stepText(what!)}` };
  }
  const kit = /^#(\d+) \[(?:(\S+) )?(\d+)\/(\d+)\] (.*)$/.exec(line);
  if (kit) {
    const [, id, stage, n, of, what] = kit;
    const where = stage ? ` (${stage})` : "";
    return { key: `#${id}`, text: `step ${n}/${of}${where}: ${stepText(what!)}` };
  }
  return undefined;
}

/** A step's instruction on one short line: a long RUN is cut (the log has it whole). */
function stepText(instruction: string): string {
  const text = [...terminalSafe(instruction.replace(/\s+/g, " ").trim())];
  return text.length > STEP_CHARS ? `${text.slice(0, STEP_CHARS - 1).join("")}…` : text.join("");
}

/** A duration for humans: `42 s`, `1m 12 s`, `1h 5m`. */
export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60} s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

/** What a terminal would show of a line that rewrites itself with `\r` (a progress counter). */
function shown(line: string): string {
  const text = line.replace(/\r+$/, "");
  return text.slice(text.lastIndexOf("\r") + 1);
}

async function eachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      onLine(buf.slice(0, i).replace(/\r$/, ""));
      buf = buf.slice(i + 1);
    }
  }
  if (buf) onLine(buf.replace(/\r$/, ""));
}

/**
 * Writes a build's log (0600, in a 0700 dir) and removes all but the newest
 * `KEPT_BUILD_LOGS`; its path, or why it could not be written (a build's
 * outcome does not hang on its log).
 */
async function keepLog(
  dir: string,
  tag: string,
  lines: string[],
): Promise<string | { error: string }> {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const path = join(dir, `${tag.replace(/[^\w.-]/g, "_")}-${stamp}.log`);
  try {
    await makePrivateDir(dir);
    await writePrivateFile(path, redact(lines.join("\n")) + "\n");
  } catch (err) {
    return { error: (err as Error).message };
  }
  await pruneLogs(dir).catch(() => {}); // another bottle's prune may race this one
  return path;
}

async function pruneLogs(dir: string): Promise<void> {
  const logs: { path: string; mtime: number }[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !e.name.endsWith(".log")) continue;
    const path = join(dir, e.name);
    const st = await Deno.stat(path).catch(() => undefined);
    if (st) logs.push({ path, mtime: st.mtime?.getTime() ?? 0 });
  }
  logs.sort((a, b) => b.mtime - a.mtime || b.path.localeCompare(a.path));
  for (const old of logs.slice(KEPT_BUILD_LOGS)) await Deno.remove(old.path).catch(() => {});
}
