/** `bottle ls`: every bottle, on every backend. */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { bottlesOf } from "./backends.ts";
import { age, table } from "./table.ts";
import { jsonTerminalSafe, terminalSafe } from "../text/terminal_safe.ts";

export function registerLs(program: Command, ctx: CliContext): void {
  program.command("ls")
    .description("List bottles (name, agent, backend, state, age, branches pushed)")
    .option("--json", "print as JSON")
    .action(async (opts: { json?: boolean }) => {
      const rows = await (await bottlesOf(ctx)).list();
      if (opts.json) {
        ctx.out(jsonTerminalSafe(JSON.stringify(rows, null, 2)));
        return;
      }
      ctx.out(table(
        ["NAME", "AGENT", "BACKEND", "STATE", "AGE", "PUSHED"],
        rows.map((r) => [
          r.name,
          r.agent,
          r.backend,
          r.state,
          age(r.createdAt),
          r.pushed?.length ? terminalSafe(r.pushed.join(" ")) : "-",
        ]),
      ));
    });
}
