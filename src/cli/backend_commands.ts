/** Commands that drive a backend (start, ls, stop, ...): registered as they land. */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";

export function registerBackendCommands(_program: Command, _ctx: CliContext): void {
}
