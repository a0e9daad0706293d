/** `bottle exec <bottle> -- CMD...` and `bottle attach <bottle>`: into a running bottle. */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { bottlesOf } from "./backends.ts";
import { SilentExit, UserError } from "../errors.ts";

export function registerExec(program: Command, ctx: CliContext): void {
  program.command("exec")
    .description("Run a command in a running bottle's agent")
    .argument("<bottle>", "bottle name (see bottle ls)")
    .argument("<command...>", "command and arguments (put them after --)")
    .option("-t, --tty", "allocate a terminal (default: when stdin is one)")
    .option("-u, --user <user>", "user inside the bottle (default: the agent user)")
    .option("-w, --workdir <dir>", "working directory inside the bottle")
    .option("-e, --env <name=value>", "set a variable for the command (repeatable)", collectEnv, {})
    .passThroughOptions()
    .action(async (bottle: string, args: string[], given: ExecOptions) => {
      const { argv, opts } = splitExecArgs(args, given);
      const code = await (await bottlesOf(ctx)).exec(bottle, argv, {
        tty: opts.tty ?? ctx.stdinIsTerminal,
        ...(opts.user ? { user: opts.user } : {}),
        ...(opts.workdir ? { workdir: opts.workdir } : {}),
        ...(Object.keys(opts.env).length > 0 ? { env: opts.env } : {}),
      });
      if (code !== 0) throw new SilentExit(code);
    });

  program.command("attach")
    .description("Start the agent program in a running (detached) bottle, on this terminal")
    .argument("<bottle>", "bottle name (see bottle ls)")
    .action(async (bottle: string) => {
      const bottles = await bottlesOf(ctx);
      const program = await bottles.program(bottle);
      if (!ctx.stdinIsTerminal && needsTerminal(program)) {
        throw new UserError(
          `bottle attach: ${
            program[0]
          } needs a terminal, and stdin is none (without one: bottle exec ${bottle} -- claude -p PROMPT)`,
        );
      }
      const code = await bottles.exec(bottle, program, { tty: ctx.stdinIsTerminal });
      if (code !== 0) throw new SilentExit(code);
    });
}

interface ExecOptions {
  tty?: boolean;
  user?: string;
  workdir?: string;
  env: Record<string, string>;
}

function collectEnv(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf("=");
  const name = eq < 0 ? value : value.slice(0, eq);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || eq < 0) {
    throw new UserError(`bottle exec: -e takes NAME=VALUE, got ${JSON.stringify(value)}`);
  }
  return { ...previous, [name]: value.slice(eq + 1) };
}

/**
 * The command, and the options given after the bottle's name: like
 * `docker exec`, options go before the command, and here also between the
 * name and the `--` that starts it (`bottle exec NAME -u root -- id`).
 */
export function splitExecArgs(
  args: string[],
  given: ExecOptions,
): { argv: string[]; opts: ExecOptions } {
  // Options are read while the words start with "-"; the first other word
  // starts the command, whose own `--` is its own (git log -- FILE).
  const opts: ExecOptions = { ...given, env: { ...given.env } };
  let i = 0;
  let argv: string[] | undefined;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      argv = args.slice(i + 1);
      break;
    }
    if (!a.startsWith("-")) {
      argv = args.slice(i);
      break;
    }
    const value = () => {
      const v = args[++i];
      if (v === undefined || v === "--") throw new UserError(`bottle exec: ${a} needs a value`);
      return v;
    };
    const [flag, inline] = a.startsWith("--") && a.includes("=")
      ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]
      : [a, undefined];
    if (flag === "-t" || flag === "--tty") opts.tty = true;
    else if (flag === "-u" || flag === "--user") opts.user = inline ?? value();
    else if (flag === "-w" || flag === "--workdir") opts.workdir = inline ?? value();
    else if (flag === "-e" || flag === "--env") opts.env = collectEnv(inline ?? value(), opts.env);
    else {
      throw new UserError(
        `bottle exec: ${
          JSON.stringify(a)
        } before -- is not an exec option (-t, -u, -w, -e; see bottle exec --help)`,
      );
    }
  }
  if (!argv || argv.length === 0) throw new UserError("bottle exec: missing command after --");
  return { argv, opts };
}

/** Claude Code's interactive session cannot run without a terminal (it asks for --print then). */
export function needsTerminal(program: readonly string[]): boolean {
  return program[0] === "claude" && !program.some((a) => a === "-p" || a === "--print");
}
