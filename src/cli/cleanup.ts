/**
 * `bottle cleanup`: removes what killed launches left behind (bottles whose
 * launcher died before finishing, or that nothing records); `--all` removes
 * every bottle.
 */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { allBackends } from "./backends.ts";

export function registerCleanup(program: Command, ctx: CliContext): void {
  program.command("cleanup")
    .description("Remove orphaned bottles left by killed launches (--all: every bottle)")
    .option("--all", "remove every bottle, running or not")
    .option("--dry-run", "only list what would be removed")
    .action(async (opts: { all?: boolean; dryRun?: boolean }) => {
      for (const backend of allBackends(ctx)) {
        for (const name of await backend.orphans(opts.all ?? false)) {
          if (!opts.dryRun) await backend.stop(name);
          ctx.out(`${opts.dryRun ? "would remove" : "removed"} ${name} (${backend.name})`);
        }
      }
    });
}
