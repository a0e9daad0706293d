/** `bottle stop <bottle>...`: remove everything a bottle owns; others keep running. */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { bottlesOf } from "./backends.ts";

export function registerStop(program: Command, ctx: CliContext): void {
  program.command("stop")
    .description("Stop bottles and remove everything they own (their audit logs are kept)")
    .argument("<bottle...>", "bottle names (see bottle ls)")
    .action(async (names: string[]) => {
      const bottles = await bottlesOf(ctx);
      for (const name of names) {
        await bottles.stop(name);
        ctx.err(`bottle: stopped ${name}`);
      }
    });
}
