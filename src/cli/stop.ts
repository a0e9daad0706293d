/** `bottle stop <bottle>...`: remove everything a bottle owns; others keep running. */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { bottlesOf } from "./backends.ts";
import { SilentExit, UserError } from "../errors.ts";
import { redact } from "../proc/secrets.ts";

export function registerStop(program: Command, ctx: CliContext): void {
  program.command("stop")
    .description("Stop bottles and remove everything they own (their audit logs are kept)")
    .argument("<bottle...>", "bottle names (see bottle ls)")
    .option(
      "--discard-pushes",
      "on an engine that does not share this host's files: drop pushes not yet fetched",
    )
    .action(async (names: string[], opts: { discardPushes?: boolean }) => {
      const bottles = await bottlesOf(ctx);
      // Every name it can; what it cannot is said, and decides the exit code.
      let code = 0;
      for (const name of names) {
        try {
          await bottles.stop(name, {
            discardPushes: opts.discardPushes ?? false,
            say: (m) => ctx.err(`bottle: ${redact(m)}`),
          });
          ctx.err(`bottle: stopped ${name}`);
        } catch (err) {
          if (names.length === 1) throw err;
          ctx.err(`bottle: ${redact((err as Error).message)}`);
          code = Math.max(code, err instanceof UserError ? err.exitCode : 1);
        }
      }
      if (code !== 0) throw new SilentExit(code);
    });
}
