/** Starting a daemon that announces "listening on HOST:PORT" on stderr (egress, the pipelock stand-in). */
import { spawn, type Spawned } from "../../src/proc/runner.ts";

export interface Daemon {
  proc: Spawned;
  port: number;
  /** Everything the daemon has written to stderr so far. */
  stderr(): string;
}

/** Starts `argv` and waits (at most 30 s) for its "listening on HOST:PORT" line on stderr. */
export async function startDaemon(
  argv: string[],
  env: Record<string, string> = {},
  stdin?: string,
): Promise<Daemon> {
  const proc = spawn(argv, {
    env,
    stdout: "null",
    stderr: "capture",
    ...(stdin !== undefined ? { stdin } : {}),
  });
  let text = "";
  const found = Promise.withResolvers<number>();
  (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.process.stderr) {
      text += dec.decode(chunk, { stream: true });
      const m = /listening on [^\s]*:(\d+)/.exec(text);
      if (m) found.resolve(Number(m[1]));
    }
    found.reject(new Error(`"${argv.join(" ")}" exited before listening: ${text}`));
  })().catch(() => {});
  const timer = setTimeout(
    () => found.reject(new Error(`Timed out starting "${argv.join(" ")}": ${text}`)),
    30_000,
  );
  try {
    return { proc, port: await found.promise, stderr: () => text };
  } finally {
    clearTimeout(timer);
  }
}

const STANDIN = new URL("../fakes/pipelock_standin.ts", import.meta.url).pathname;

/** The pipelock stand-in on a free loopback port, with `names` resolved to 127.0.0.1. */
export function startPipelockStandin(config: string, names: string[]): Promise<Daemon> {
  return startDaemon([
    Deno.execPath(),
    "run",
    "-A",
    STANDIN,
    "run",
    "--config",
    config,
    "--listen",
    "127.0.0.1:0",
    ...names.flatMap((n) => ["--resolve", `${n}=127.0.0.1`]),
  ]);
}
