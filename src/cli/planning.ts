/** The agent and its plan, as `start`, `plan` and `build` make them. */
import type { LoadedAgent } from "../config/discover.ts";
import type { Backend, Plan } from "../plan/plan_types.ts";
import type { WorkspaceMode } from "../config/schema.ts";
import type { CliContext } from "./context.ts";
import { type ConfigOption, findAgent } from "./agent_options.ts";
import { checkSuffix } from "../state/bottle_name.ts";

export async function planFor(
  ctx: CliContext,
  config: ConfigOption,
  agentName: string,
  opts: { backend?: Backend; name?: string; workspace?: WorkspaceMode; fresh?: boolean },
): Promise<{ agent: LoadedAgent; plan: Plan }> {
  const suffix = opts.name !== undefined ? checkSuffix(opts.name) : undefined;
  const [{ makePlan }, { hostFacts }, agent] = await Promise.all([
    import("../plan/make_plan.ts"),
    import("../plan/host_facts.ts"),
    findAgent(ctx, config, agentName),
  ]);
  const backend = opts.backend ?? agent.definition.backend;
  const facts = await hostFacts(
    { env: ctx.env, cwd: ctx.cwd, stateRoot: ctx.dirs.state },
    {
      ...(opts.backend ? { backend: opts.backend } : {}),
      ...(backend === "smolmachines" ? { engineKind: () => engineKindOf(ctx) } : {}),
      ...(suffix ? { suffix } : {}),
      ...(opts.workspace ? { workspace: opts.workspace } : {}),
      ...(opts.fresh ? { fresh: true } : {}),
    },
  );
  return { agent, plan: makePlan(agent, facts) };
}

async function engineKindOf(ctx: CliContext) {
  const [{ readEngineKind }, { enginesOf }] = await Promise.all([
    import("../engine/engine_probe.ts"),
    import("./backends.ts"),
  ]);
  return readEngineKind((await enginesOf(ctx)).docker);
}
