/**
 * The `bottle` command line: builds the command tree and turns every outcome
 * into an exit code. Usage and config mistakes exit 2 with one message; bugs
 * exit 1 with a stack when BOTTLE_DEBUG is set; a cancelled run exits 130/143.
 */
import { Command, CommanderError } from "commander";
import { CancelledError, SilentExit, UserError } from "../errors.ts";
import { redact } from "../proc/secrets.ts";
import { CommandNotFoundError, setTrace } from "../proc/runner.ts";
import type { CliContext } from "./context.ts";
import { registerAgents } from "./agents.ts";
import { registerConfig } from "./config_schema.ts";
import { registerDoctor } from "./doctor.ts";
import { registerPlan } from "./plan.ts";
import { registerVersion, versionLine } from "./version.ts";
import { registerBackendCommands } from "./backend_commands.ts";
import { registerCompletions } from "./completions.ts";
import { AGENT_COMMANDS, CONFIG_FLAGS, CONFIG_HELP } from "./agent_options.ts";

export function buildProgram(ctx: CliContext): Command {
  const program = new Command("bottle")
    .description("Run a coding agent in a sealed bottle; everything it must not hold stays outside")
    .version(versionLine(), "-V, --version")
    .option(CONFIG_FLAGS, CONFIG_HELP)
    .showSuggestionAfterError(true)
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.out(s.replace(/\n$/, "")),
      writeErr: (s) => ctx.err(s.replace(/\n$/, "")),
      // Commander's own usage errors read like every other: `bottle: …`, and where to look.
      outputError: (s, write) =>
        write(`bottle: ${s.replace(/^error: /, "").replace(/\n$/, "")} (see bottle --help)\n`),
    });
  registerPlan(program, ctx);
  registerAgents(program, ctx);
  registerConfig(program, ctx);
  registerDoctor(program, ctx);
  registerVersion(program, ctx);
  registerBackendCommands(program, ctx);
  registerCompletions(program, ctx);
  for (const c of program.commands) {
    c.exitOverride().configureOutput(program.configureOutput());
    // Global options before a command's name only, as git's: but --config
    // is where users put it, after it too.
    if (AGENT_COMMANDS.includes(c.name())) c.option(CONFIG_FLAGS, CONFIG_HELP);
  }
  return program;
}

/** Runs the CLI on `args` and returns the process exit code. */
export async function runCli(args: string[], ctx: CliContext): Promise<number> {
  if (ctx.env.BOTTLE_TRACE) setTrace((line) => ctx.err(`bottle: trace ${line}`));
  const program = buildProgram({ ...ctx, argv: args });
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (err) {
    return exitCodeFor(err, ctx);
  }
}

function exitCodeFor(err: unknown, ctx: CliContext): number {
  if (err instanceof SuppressedError) {
    // A teardown step failed while an error was on its way out: the error
    // that ended the launch comes first (and decides the exit code), then
    // what teardown could not do.
    const { original, teardown } = unwrapSuppressed(err);
    const code = exitCodeFor(original, ctx);
    for (const t of teardown) {
      ctx.err(`bottle: teardown: ${redact(t instanceof Error ? t.message : String(t))}`);
    }
    return code;
  }
  if (err instanceof CommanderError) {
    // Commander already printed the message (or the help).
    if (
      err.code === "commander.helpDisplayed" || err.code === "commander.help" ||
      err.code === "commander.version"
    ) {
      return 0;
    }
    if (err.code === "commander.executeSubCommandAsync") return err.exitCode;
    return 2;
  }
  if (err instanceof SilentExit) return err.exitCode;
  if (err instanceof CancelledError) {
    ctx.err(`bottle: ${err.message}`);
    return err.exitCode;
  }
  if (err instanceof CommandNotFoundError) {
    // A missing tool is the user's to fix, like bad input.
    ctx.err(`bottle: ${err.message} (bottle doctor checks what this host is missing)`);
    return 2;
  }
  if (err instanceof UserError) {
    ctx.err(`bottle: ${redact(err.message)}`);
    return err.exitCode;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  ctx.err(`bottle: ${redact(e.message)}`);
  if (ctx.env.BOTTLE_DEBUG) ctx.err(redact(e.stack ?? ""));
  return 1;
}

/** The error a `SuppressedError` chain started from, and every teardown failure after it, in order. */
export function unwrapSuppressed(err: SuppressedError): { original: unknown; teardown: unknown[] } {
  const teardown: unknown[] = [];
  let cur: unknown = err;
  while (cur instanceof SuppressedError) {
    teardown.unshift(...flatten(cur.error));
    cur = cur.suppressed;
  }
  return { original: cur, teardown };
}

/** A stack's own disposal failures nest too (the later wraps the earlier): in order. */
function flatten(e: unknown): unknown[] {
  return e instanceof SuppressedError ? [...flatten(e.suppressed), ...flatten(e.error)] : [e];
}
