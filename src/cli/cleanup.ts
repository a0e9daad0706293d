/**
 * `bottle cleanup`: removes what killed launches left behind (bottles whose
 * launcher died before finishing, or that nothing records); `--all` removes
 * every bottle; `--cache` also prunes cached VM artifacts.
 */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { allBackends } from "./backends.ts";
import { join } from "node:path";
import { artifactDir } from "../backends/smolvm/machine_artifact.ts";
import { pathExists } from "../state/path_exists.ts";

export function registerCleanup(program: Command, ctx: CliContext): void {
  program.command("cleanup")
    .description("Remove orphaned bottles left by killed launches (--all: every bottle)")
    .option("--all", "remove every bottle, running or not")
    .option("--dry-run", "only list what would be removed")
    .option("--cache", "also remove cached VM artifacts (.smolmachine files)")
    .action(async (opts: { all?: boolean; dryRun?: boolean; cache?: boolean }) => {
      for (const backend of await allBackends(ctx)) {
        for (const name of await backend.orphans(opts.all ?? false)) {
          if (!opts.dryRun) await backend.stop(name);
          ctx.out(`${opts.dryRun ? "would remove" : "removed"} ${name} (${backend.name})`);
        }
      }
      if (opts.cache) {
        const dir = artifactDir(ctx.dirs.cache);
        if (await pathExists(dir)) {
          for await (const e of Deno.readDir(dir)) {
            if (!opts.dryRun) await Deno.remove(join(dir, e.name), { recursive: true });
            ctx.out(`${opts.dryRun ? "would remove" : "removed"} ${join(dir, e.name)}`);
          }
        }
      }
    });
}
