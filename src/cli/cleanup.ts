/**
 * `bottle cleanup`: removes what killed launches left behind (bottles whose
 * launcher died before finishing, as this user's records show); `--all`
 * removes every bottle; `--cache` also prunes cached VM artifacts; `--logs`
 * the audit logs `stop` kept for bottles that are gone; `--homes` the agents'
 * kept homes (Claude Code's settings and history, per agent).
 */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { bottlesOf } from "./backends.ts";
import { join } from "node:path";
import { SilentExit } from "../errors.ts";
import { keptHomesDir } from "../state/dirs.ts";

export function registerCleanup(program: Command, ctx: CliContext): void {
  program.command("cleanup")
    .description("Remove orphaned bottles left by killed launches (--all: every bottle)")
    .option("--all", "remove every bottle, running or not")
    .option("--dry-run", "only list what would be removed")
    .option("--cache", "also remove cached VM artifacts (.smolmachine files)")
    .option("--logs", "also remove the audit logs kept for bottles that are gone")
    .option("--homes", "also remove the agents' kept homes (Claude Code's settings and history)")
    .action(async (
      opts: { all?: boolean; dryRun?: boolean; cache?: boolean; logs?: boolean; homes?: boolean },
    ) => {
      const bottles = await bottlesOf(ctx);
      // One bottle that cannot go (pushes it could not fetch) does not keep the others.
      let failed = 0;
      const orphans = await bottles.orphans(opts.all ?? false);
      if (orphans.length === 0) {
        ctx.err(`bottle: no ${opts.all ? "bottles" : "orphaned bottles"} to remove`);
      }
      for (const { name, backend } of orphans) {
        try {
          if (!opts.dryRun) await bottles.stop(name);
          ctx.out(`${opts.dryRun ? "would remove" : "removed"} ${name} (${backend})`);
        } catch (err) {
          failed++;
          ctx.err(`bottle: could not remove ${name}: ${(err as Error).message}`);
        }
      }
      if (opts.logs) {
        const live = new Set((await bottles.list()).map((b) => b.name));
        const dir = join(ctx.dirs.state, "logs");
        const names = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
        for (const e of names.sort((a, b) => a.name.localeCompare(b.name))) {
          if (!e.isDirectory || live.has(e.name)) continue;
          if (!opts.dryRun) await Deno.remove(join(dir, e.name), { recursive: true });
          ctx.out(`${opts.dryRun ? "would remove" : "removed"} the audit log of ${e.name}`);
        }
      }
      if (opts.homes) {
        // One dir per agent, one kept home per project in it.
        const dir = keptHomesDir(ctx.dirs.state);
        const names = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
        for (const e of names.sort((a, b) => a.name.localeCompare(b.name))) {
          if (!e.isDirectory) continue;
          try {
            if (!opts.dryRun) await Deno.remove(join(dir, e.name), { recursive: true });
            ctx.out(`${opts.dryRun ? "would remove" : "removed"} the kept homes of ${e.name}`);
          } catch (err) {
            failed++;
            ctx.err(
              `bottle: could not remove the kept homes of ${e.name}: ${(err as Error).message}`,
            );
          }
        }
      }
      if (opts.cache) {
        const { pruneArtifacts } = await import("../backends/smolvm/machine_artifact.ts");
        for (const path of await pruneArtifacts(ctx.dirs.cache, opts.dryRun ?? false)) {
          ctx.out(`${opts.dryRun ? "would remove" : "removed"} ${path}`);
        }
      }
      if (failed > 0) throw new SilentExit(1);
    });
}
