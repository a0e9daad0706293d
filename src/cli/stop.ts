/** `bottle stop <bottle>...`: remove everything a bottle owns; others keep running. */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { backendOf } from "./backends.ts";

export function registerStop(program: Command, ctx: CliContext): void {
  program.command("stop")
    .description("Stop bottles and remove everything they own")
    .argument("<bottle...>", "bottle names (see bottle ls)")
    .action(async (names: string[]) => {
      for (const name of names) {
        await (await backendOf(ctx, name)).stop(name);
        ctx.err(`bottle: stopped ${name}`);
      }
    });
}
