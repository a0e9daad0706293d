/** Commands that drive a backend: one file per verb. */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { registerStart } from "./start.ts";
import { registerRun } from "./run.ts";
import { registerBuild } from "./build.ts";
import { registerLs } from "./ls.ts";
import { registerStop } from "./stop.ts";
import { registerCleanup } from "./cleanup.ts";
import { registerExec } from "./exec.ts";
import { registerLogs } from "./logs.ts";
import { registerFetch } from "./fetch.ts";
import { registerSupervise } from "./supervise.ts";

export function registerBackendCommands(program: Command, ctx: CliContext): void {
  registerStart(program, ctx);
  registerRun(program, ctx);
  registerBuild(program, ctx);
  registerLs(program, ctx);
  registerStop(program, ctx);
  registerFetch(program, ctx);
  registerCleanup(program, ctx);
  registerExec(program, ctx);
  registerLogs(program, ctx);
  registerSupervise(program, ctx);
}
