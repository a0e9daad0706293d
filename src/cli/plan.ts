/** `bottle plan <agent>`: what a start would do, printed without doing it. */
import type { Command } from "commander";
import { stringify } from "yaml";
import { makePlan } from "../plan/make_plan.ts";
import { hostFacts } from "../plan/host_facts.ts";
import { type ConfigOption, findAgent } from "./agent_options.ts";
import type { CliContext } from "./context.ts";
import { type BackendOption, backendOption } from "./backend_option.ts";

export function registerPlan(program: Command, ctx: CliContext): void {
  program.command("plan")
    .description("Print what `start` would do for an agent, without doing it")
    .argument("[agent]", "agent name", "claude")
    .addOption(backendOption())
    .option("--name <suffix>", "bottle name suffix (default: random)")
    .option("--json", "print the plan as JSON (stable, see README)")
    .action(
      async (
        agentName: string,
        opts: ConfigOption & BackendOption & { json?: boolean; name?: string },
      ) => {
        const agent = await findAgent(ctx, { ...opts, ...program.opts() }, agentName);
        const plan = makePlan(agent, hostFacts(ctx, opts));
        ctx.out(opts.json ? JSON.stringify(plan, null, 2) : stringify(plan, { lineWidth: 0 }));
        for (const w of plan.warnings) ctx.err(`warning: ${w}`);
      },
    );
}
