/** The `--config` option and agent lookup shared by the commands that take an agent. */
import type { Discovery, LoadedAgent } from "../config/discover.ts";
import type { CliContext } from "./context.ts";
import type { Command } from "commander";

export interface ConfigOption {
  config?: string;
}

/** The commands that take an agent, where `--config` may also come after the command's name. */
export const AGENT_COMMANDS = ["plan", "agents", "build", "start", "run"];
export const CONFIG_FLAGS = "-c, --config <file>";
export const CONFIG_HELP = "agent file to use (default: ./bottle.yaml, then the user config dir)";

/** `--config` given after the command wins over one given before it. */
export function configOf(program: Command, opts: ConfigOption): ConfigOption {
  const c = opts.config ?? program.opts<ConfigOption>().config;
  return c !== undefined ? { config: c } : {};
}

export async function discover(ctx: CliContext, opts: ConfigOption): Promise<Discovery> {
  const { discoverAgents } = await import("../config/discover.ts");
  return discoverAgents({
    ...(opts.config !== undefined ? { configFile: opts.config } : {}),
    cwd: ctx.cwd,
    userConfigDir: ctx.dirs.config,
  });
}

export async function findAgent(
  ctx: CliContext,
  opts: ConfigOption,
  name: string,
): Promise<LoadedAgent> {
  const { pickAgent } = await import("../config/discover.ts");
  return pickAgent(await discover(ctx, opts), name);
}
