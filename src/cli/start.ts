/** `bottle start [agent]`: plan, launch, run the agent; tear down when it ends. */
import type { Command } from "commander";
import { makePlan } from "../plan/make_plan.ts";
import { hostFacts } from "../plan/host_facts.ts";
import { type ConfigOption, findAgent } from "./agent_options.ts";
import { type BackendOption, backendOption } from "./backend_option.ts";
import { backendFor } from "./backends.ts";
import type { CliContext } from "./context.ts";
import { buildCaFiles, readBuildCas } from "../build/build_cas.ts";
import { SilentExit } from "../errors.ts";
import { throwIfCancelled } from "../proc/signals.ts";

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function registerStart(program: Command, ctx: CliContext): void {
  program.command("start")
    .description("Start an agent in a new bottle (default agent: claude)")
    .argument("[agent]", "agent name", "claude")
    .addOption(backendOption())
    .option("-d, --detach", "leave the bottle running and return once it is ready")
    .option("--name <suffix>", "bottle name suffix (default: random)")
    .option("--build-ca <file>", "extra CA certificate for image builds (repeatable)", collect, [])
    .action(async (
      agentName: string,
      opts: BackendOption & { detach?: boolean; name?: string; buildCa: string[] },
    ) => {
      const agent = await findAgent(ctx, program.opts<ConfigOption>(), agentName);
      const plan = makePlan(agent, hostFacts(ctx, opts));
      for (const w of plan.warnings) ctx.err(`bottle: warning: ${w}`);
      const buildCaPem = await readBuildCas(
        buildCaFiles(opts.buildCa, agent.buildCaCerts, ctx.env),
      );
      ctx.err(`bottle: starting ${plan.bottle.name} (${plan.bottle.backend})`);
      const code = await backendFor(ctx, plan.bottle.backend).launch({
        plan,
        agent,
        detach: opts.detach ?? false,
        buildCaPem,
        env: ctx.env,
        signal: ctx.signal,
        progress: (m) => ctx.err(`bottle: ${m}`),
      });
      throwIfCancelled(ctx.signal); // a session ended by SIGTERM exits 143, after teardown
      if (opts.detach) ctx.out(plan.bottle.name);
      if (code !== 0) throw new SilentExit(code);
    });
}
