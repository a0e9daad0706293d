/** What every command gets from the outside world, injectable for tests. */
import { type HostDirs, hostDirs } from "../state/dirs.ts";

export interface CliContext {
  cwd: string;
  env: Record<string, string | undefined>;
  dirs: HostDirs;
  /** Whether stdin is a terminal (sessions and `exec` get a TTY then). */
  stdinIsTerminal: boolean;
  out(text: string): void;
  err(text: string): void;
  /** Aborted on SIGINT/SIGTERM; long operations pass it down. */
  signal: AbortSignal;
  /**
   * The invocation's arguments as given (set by runCli): commander drops a
   * leading `--` from operands, and `run` must see where its prompt starts.
   */
  argv?: readonly string[];
}

export function defaultContext(signal: AbortSignal): CliContext {
  const env = Deno.env.toObject();
  const enc = new TextEncoder();
  return {
    cwd: Deno.cwd(),
    env,
    dirs: hostDirs(env),
    stdinIsTerminal: Deno.stdin.isTerminal(),
    out: (t) => void Deno.stdout.writeSync(enc.encode(t.endsWith("\n") ? t : t + "\n")),
    err: (t) => void Deno.stderr.writeSync(enc.encode(t.endsWith("\n") ? t : t + "\n")),
    signal,
  };
}
