/** The `--config` option and agent lookup shared by the commands that take an agent. */
import type { Discovery, LoadedAgent } from "../config/discover.ts";
import type { CliContext } from "./context.ts";

export interface ConfigOption {
  config?: string;
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
