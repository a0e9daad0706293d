/**
 * `bottle cleanup`: removes what killed launches left behind (bottles whose
 * launcher died before finishing, or that nothing records); `--all` removes
 * every bottle; `--cache` also prunes cached VM artifacts.
 */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { bottlesOf } from "./backends.ts";

export function registerCleanup(program: Command, ctx: CliContext): void {
  program.command("cleanup")
    .description("Remove orphaned bottles left by killed launches (--all: every bottle)")
    .option("--all", "remove every bottle, running or not")
    .option("--dry-run", "only list what would be removed")
    .option("--cache", "also remove cached VM artifacts (.smolmachine files)")
    .action(async (opts: { all?: boolean; dryRun?: boolean; cache?: boolean }) => {
      const bottles = await bottlesOf(ctx);
      for (const { name, backend } of await bottles.orphans(opts.all ?? false)) {
        if (!opts.dryRun) await bottles.stop(name);
        ctx.out(`${opts.dryRun ? "would remove" : "removed"} ${name} (${backend})`);
      }
      if (opts.cache) {
        const { pruneArtifacts } = await import("../backends/smolvm/machine_artifact.ts");
        for (const path of await pruneArtifacts(ctx.dirs.cache, opts.dryRun ?? false)) {
          ctx.out(`${opts.dryRun ? "would remove" : "removed"} ${path}`);
        }
      }
    });
}
