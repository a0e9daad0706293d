/** `bottle stop <bottle>...`: remove everything a bottle owns; others keep running. */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { bottlesOf } from "./backends.ts";

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
      for (const name of names) {
        await bottles.stop(name, { discardPushes: opts.discardPushes ?? false });
        ctx.err(`bottle: stopped ${name}`);
      }
    });
}
