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
    .passThroughOptions()
    .action(async (
      bottle: string,
      args: string[],
      opts: { tty?: boolean; user?: string; workdir?: string },
    ) => {
      // With pass-through options commander keeps the `--` that ends ours.
      const argv = args[0] === "--" ? args.slice(1) : args;
      if (argv.length === 0) throw new UserError("bottle exec: missing command after --");
      const code = await (await bottlesOf(ctx)).exec(bottle, argv, {
        tty: opts.tty ?? ctx.stdinIsTerminal,
        ...(opts.user ? { user: opts.user } : {}),
        ...(opts.workdir ? { workdir: opts.workdir } : {}),
      });
      if (code !== 0) throw new SilentExit(code);
    });

  program.command("attach")
    .description("Start the agent program in a running (detached) bottle, on this terminal")
    .argument("<bottle>", "bottle name (see bottle ls)")
    .action(async (bottle: string) => {
      const bottles = await bottlesOf(ctx);
      const code = await bottles.exec(bottle, await bottles.program(bottle), {
        tty: ctx.stdinIsTerminal,
      });
      if (code !== 0) throw new SilentExit(code);
    });
}
