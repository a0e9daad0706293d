/**
 * The bundle's one program: bottle bundles this file (with everything it
 * imports) into bottle-bundle.js for the bundle image, so every daemon of
 * ours is this script with a subcommand: `init` (PID 1, starts the others)
 * and `egress`.
 */
import { fileURLToPath } from "node:url";
import { runInit } from "./init/init.ts";
import type { SelfCommand } from "./init/daemons.ts";
import { main as egressMain } from "./egress/main.ts";

/** How to run this script again, for the daemons init starts. */
function self(): SelfCommand {
  return { deno: Deno.execPath(), script: fileURLToPath(import.meta.url) };
}

async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case "init":
      return await runInit(self(), rest[0]);
    case "egress":
      return await egressMain(rest);
    default:
      console.error(
        `bottle-bundle: unknown subcommand ${JSON.stringify(cmd ?? "")}: expected init or egress`,
      );
      return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
