/**
 * `bottle fetch <bottle>`: the bottle's pushes into the host repository. On
 * a local engine they are there as they happen; on one that does not share
 * this host's files they wait in the bottle's workspace volume until now
 * (or `stop`).
 */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { bottlesOf } from "./backends.ts";
import { terminalSafe } from "../text/terminal_safe.ts";

export function registerFetch(program: Command, ctx: CliContext): void {
  program.command("fetch")
    .description("Bring a bottle's pushes into the host repository (bottle/<name>/<branch>)")
    .argument("<bottle>", "bottle name (see bottle ls)")
    .action(async (name: string) => {
      const bottles = await bottlesOf(ctx);
      const { branches } = await bottles.fetch(name);
      // Branch names are the agent's.
      for (const b of branches) ctx.out(terminalSafe(b));
      if (branches.length === 0) ctx.err(`bottle: ${name} has pushed nothing yet`);
    });
}
