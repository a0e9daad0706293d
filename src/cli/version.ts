/** `bottle version`: bottle's version and the runtime it runs on. */
import type { Command } from "commander";
import { VERSION } from "../version.ts";
import type { CliContext } from "./context.ts";

/** One version string, for `bottle version` and `bottle --version` alike. */
export function versionLine(): string {
  return `bottle ${VERSION} (deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch})`;
}

export function registerVersion(program: Command, ctx: CliContext): void {
  program.command("version")
    .description("Print bottle's version")
    .option("--json", "print as JSON")
    .action((opts: { json?: boolean }) => {
      const info = {
        bottle: VERSION,
        deno: Deno.version.deno,
        os: Deno.build.os,
        arch: Deno.build.arch,
      };
      ctx.out(opts.json ? JSON.stringify(info, null, 2) : versionLine());
    });
}
