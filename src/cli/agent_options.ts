/** The `--config` option and agent lookup shared by the commands that take an agent. */
import { discoverAgents, type Discovery, type LoadedAgent, pickAgent } from "../config/discover.ts";
import type { CliContext } from "./context.ts";

export interface ConfigOption {
  config?: string;
}

export function discover(ctx: CliContext, opts: ConfigOption): Promise<Discovery> {
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
  return pickAgent(await discover(ctx, opts), name);
}
