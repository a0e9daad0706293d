/**
 * The bundle's one program: bottle bundles this file (with everything it
 * imports) into bottle-bundle/ for the bundle image, so every daemon of
 * ours is this script with a subcommand: `init` (PID 1, starts the others)
 * `egress`, `git-gate`, `gate-hook` (the gate's hooks, run by git) and
 * `supervise`; `warm` is run once at image build to fill Deno's caches.
 */
import { fileURLToPath } from "node:url";
import type { SelfCommand } from "./init/daemons.ts";

/** How to run this script again, for the daemons init starts. */
function self(): SelfCommand {
  return { deno: Deno.execPath(), script: fileURLToPath(import.meta.url) };
}

async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    // Each daemon loads only its own code: a process starts in milliseconds,
    // not in the time the whole bundle takes to evaluate.
    case "init":
      return await (await import("./init/init.ts")).runInit(self(), {
        startInput: rest.includes("--start-input"),
      });
    case "egress":
      return await (await import("./egress/main.ts")).main(rest);
    case "git-gate":
      return await (await import("./git_gate/main.ts")).main(rest, self());
    case "supervise":
      return await (await import("./supervise/main.ts")).main(rest);
    case "gate-hook":
      return await (await import("./git_gate/hooks.ts")).runHook(rest[0] ?? "");
    case "warm":
      // Image build: load every module once so Deno's code cache holds them.
      await Promise.all([
        import("./init/init.ts"),
        import("./egress/main.ts"),
        import("./git_gate/main.ts"),
        import("./git_gate/hooks.ts"),
        import("./supervise/main.ts"),
      ]);
      return 0;
    default:
      console.error(
        `bottle-bundle: unknown subcommand ${
          JSON.stringify(cmd ?? "")
        }: expected init, egress, git-gate, gate-hook or supervise`,
      );
      return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
