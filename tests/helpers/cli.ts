/** Runs the CLI in-process with captured output and isolated host dirs. */
import { runCli } from "../../src/cli/app.ts";
import type { CliContext } from "../../src/cli/context.ts";
import { hostDirs } from "../../src/state/dirs.ts";

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function cli(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; home?: string } = {},
): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const home = opts.home ?? (await Deno.makeTempDir({ prefix: "bottle-home-" }));
  const env = { HOME: home, PATH: Deno.env.get("PATH") ?? "", ...opts.env };
  const ctx: CliContext = {
    cwd: opts.cwd ?? home,
    env,
    dirs: hostDirs(env),
    stdinIsTerminal: false,
    out: (t) => out.push(t.endsWith("\n") ? t : t + "\n"),
    err: (t) => err.push(t.endsWith("\n") ? t : t + "\n"),
    signal: new AbortController().signal,
  };
  const code = await runCli(args, ctx);
  return { code, stdout: out.join(""), stderr: err.join("") };
}
