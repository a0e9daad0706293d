/**
 * The one way bottle runs an external program. Every call to docker, smolvm,
 * git or a credential helper goes through `run` (or `spawn` for long-lived
 * streams), so that failures always say what ran, how it ended and what the
 * program said, with secrets redacted. Secrets reach children through their
 * environment (`env`), never through argv.
 */
import { redact } from "./secrets.ts";

export type Stdio = "capture" | "inherit" | "null";

export interface RunOptions {
  /** Extra environment for the child, merged over the parent's. Put secrets here. */
  env?: Record<string, string>;
  /** Start from an empty environment: the child sees only `env`. */
  clearEnv?: boolean;
  cwd?: string;
  /** Bytes or text for the child's stdin, or "inherit" for the terminal. Default: none. */
  stdin?: Uint8Array | string | "inherit" | ReadableStream<Uint8Array>;
  stdout?: Stdio;
  stderr?: Stdio;
  /** Kill the child after this long; the result then has code 124. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Throw `CommandError` on a non-zero exit (default true). */
  check?: boolean;
}

export interface RunResult {
  argv: string[];
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const STDERR_TAIL_LINES = 20;

/** Where every program's start and end is reported when tracing (`BOTTLE_TRACE=1`). */
let tracer: ((line: string) => void) | undefined;
const traceStart = performance.now();

/** Turns tracing on (the CLI does, from the invocation's BOTTLE_TRACE) or off. */
export function setTrace(sink: ((line: string) => void) | undefined): void {
  tracer = sink;
}

/** A program that failed: carries argv (redacted), exit code and stderr tail. */
export class CommandError extends Error {
  override name = "CommandError";
  readonly argv: string[];
  readonly code: number;
  readonly stderrTail: string;
  readonly timedOut: boolean;
  constructor(argv: string[], code: number, stderr: string, timedOut: boolean) {
    const safeArgv = argv.map(redact);
    const tail = redact(tailLines(stderr, STDERR_TAIL_LINES));
    const how = timedOut ? "timed out" : `exited with code ${code}`;
    super(`Command "${shellQuote(safeArgv)}" ${how}${tail ? `: ${tail}` : ""}`);
    this.argv = safeArgv;
    this.code = code;
    this.stderrTail = tail;
    this.timedOut = timedOut;
  }
}

/** A program that could not be started at all (not installed, not executable). */
export class CommandNotFoundError extends Error {
  override name = "CommandNotFoundError";
  constructor(readonly program: string, cause: unknown) {
    super(`Cannot run "${program}": ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** Runs `argv` to completion. */
export async function run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
  const child = spawn(argv, options);
  const [status, stdout, stderr] = await Promise.all([
    child.status,
    child.stdoutText(),
    child.stderrText(),
  ]);
  const result: RunResult = {
    argv,
    code: status.code,
    stdout,
    stderr,
    timedOut: status.timedOut,
  };
  if ((options.check ?? true) && result.code !== 0) {
    throw new CommandError(argv, result.code, stderr, status.timedOut);
  }
  return result;
}

export interface Spawned {
  readonly process: Deno.ChildProcess;
  readonly status: Promise<{ code: number; timedOut: boolean }>;
  /** Captured stdout as text (empty unless stdout is "capture"). */
  stdoutText(): Promise<string>;
  /** Captured stdout as bytes (empty unless stdout is "capture"); use it or stdoutText, not both. */
  stdoutBytes(): Promise<Uint8Array>;
  stderrText(): Promise<string>;
  kill(signal?: Deno.Signal): void;
}

/**
 * Starts `argv` and returns at once. stdout "capture" leaves the stream on
 * `process.stdout` for the caller to read unless `stdoutText()` is called.
 */
export function spawn(argv: string[], options: RunOptions = {}): Spawned {
  const [program, ...args] = argv;
  if (!program) throw new Error("spawn: empty argv");
  const stdinOpt = options.stdin;
  const cmd = new Deno.Command(program, {
    args,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
    ...(options.clearEnv ? { clearEnv: true } : {}),
    stdin: stdinOpt === undefined ? "null" : stdinOpt === "inherit" ? "inherit" : "piped",
    stdout: toDeno(options.stdout ?? "capture"),
    stderr: toDeno(options.stderr ?? "capture"),
  });
  let process: Deno.ChildProcess;
  try {
    process = cmd.spawn();
  } catch (err) {
    throw new CommandNotFoundError(program, err);
  }

  if (stdinOpt !== undefined && stdinOpt !== "inherit") {
    if (stdinOpt instanceof ReadableStream) {
      stdinOpt.pipeTo(process.stdin).catch(() => {});
    } else {
      const bytes = typeof stdinOpt === "string" ? new TextEncoder().encode(stdinOpt) : stdinOpt;
      const w = process.stdin.getWriter();
      w.write(bytes).then(() => w.close()).catch(() => {});
    }
  }

  let timedOut = false;
  const kill = (signal: Deno.Signal = "SIGTERM") => {
    try {
      process.kill(signal);
    } catch {
      // already exited
    }
  };
  const timer = options.timeoutMs !== undefined
    ? setTimeout(() => {
      timedOut = true;
      killGently(kill);
    }, options.timeoutMs)
    : undefined;
  const onAbort = () => killGently(kill);
  options.signal?.addEventListener("abort", onAbort, { once: true });

  const began = performance.now();
  const shown = tracer ? shellQuote(argv.map(redact)).slice(0, 160) : "";
  tracer?.(`+${(began - traceStart).toFixed(0)}ms start ${shown}`);
  const status = process.status.then((s) => {
    if (timer !== undefined) clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    const end = performance.now();
    tracer?.(
      `+${(end - traceStart).toFixed(0)}ms done  ${shown} (${
        (end - began).toFixed(0)
      }ms, ${s.code})`,
    );
    return { code: timedOut ? 124 : s.code, timedOut };
  });

  const capture = (which: "stdout" | "stderr") => {
    const mode = options[which] ?? "capture";
    if (mode !== "capture") return Promise.resolve("");
    return new Response(process[which]).text();
  };
  let stdoutP: Promise<string> | undefined;
  let stderrP: Promise<string> | undefined;
  return {
    process,
    status,
    stdoutText: () => (stdoutP ??= capture("stdout")),
    stdoutBytes: async () =>
      (options.stdout ?? "capture") === "capture"
        ? new Uint8Array(await new Response(process.stdout).arrayBuffer())
        : new Uint8Array(),
    stderrText: () => (stderrP ??= capture("stderr")),
    kill,
  };
}

/** SIGTERM, then SIGKILL if the child is still there after a grace period. */
function killGently(kill: (s?: Deno.Signal) => void): void {
  kill("SIGTERM");
  const t = setTimeout(() => kill("SIGKILL"), 3000);
  Deno.unrefTimer(t);
}

function toDeno(s: Stdio): "piped" | "inherit" | "null" {
  return s === "capture" ? "piped" : s;
}

function tailLines(text: string, n: number): string {
  const lines = text.trimEnd().split("\n");
  return lines.slice(-n).join("\n").trim();
}

/** Renders argv for humans; never executed. */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)
    .join(" ");
}
