/** `bottle agents`: every agent definition bottle can see, and where each came from. */
import type { Command } from "commander";
import { configOf, type ConfigOption, discover } from "./agent_options.ts";
import type { CliContext } from "./context.ts";
import { table } from "./table.ts";

export function registerAgents(program: Command, ctx: CliContext): void {
  program.command("agents")
    .description("List agent definitions and where each came from")
    .option("--json", "print as JSON")
    .action(async (opts: ConfigOption & { json?: boolean }) => {
      const d = await discover(ctx, configOf(program, opts));
      const rows = [...d.agents.values()].map((a) => ({
        name: a.name,
        backend: a.definition.backend,
        origin: a.origin,
        description: a.definition.description ?? "",
      }));
      const shadowed = d.shadowed.map((a) => ({ name: a.name, origin: a.origin }));
      if (opts.json) {
        ctx.out(JSON.stringify({ agents: rows, shadowed }, null, 2));
        return;
      }
      ctx.out(
        table(
          ["NAME", "BACKEND", "ORIGIN", "DESCRIPTION"],
          rows.map((r) => [r.name, r.backend, r.origin, r.description]),
        ),
      );
      for (const s of shadowed) {
        ctx.out(`(${s.name} in ${s.origin} is shadowed by an earlier definition)`);
      }
    });
}
