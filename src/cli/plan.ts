/** `bottle plan <agent>`: what a start would do, printed without doing it. */
import type { Command } from "commander";
import { configOf, type ConfigOption } from "./agent_options.ts";
import type { CliContext } from "./context.ts";
import { type BackendOption, backendOption, workspaceOption } from "./backend_option.ts";
import { planFor } from "./planning.ts";
import { planSummary } from "./plan_summary.ts";

export function registerPlan(program: Command, ctx: CliContext): void {
  program.command("plan")
    .description("Print what `start` would do for an agent, without doing it")
    .argument("[agent]", "agent name", "claude")
    .addOption(backendOption())
    .addOption(workspaceOption())
    .option("--name <suffix>", "bottle name suffix (default: random)")
    .option("--json", "print the whole plan as JSON (stable, see README)")
    .option("--full", "print the whole plan as YAML")
    .action(
      async (
        agentName: string,
        opts: ConfigOption & BackendOption & { json?: boolean; full?: boolean; name?: string },
      ) => {
        const { agent, plan } = await planFor(ctx, configOf(program, opts), agentName, opts);
        // The host files it names are checked as `start` checks them, and a
        // secret `start` could not read is said now.
        const [{ checkPlanInputs }, { buildCaFiles, readBuildCas }, { secretSourceProblem }] =
          await Promise.all([
            import("../plan/plan_inputs.ts"),
            import("../build/build_cas.ts"),
            import("../secrets/resolve_secret.ts"),
          ]);
        await checkPlanInputs(plan, agent.origin);
        await readBuildCas(buildCaFiles([], agent.buildCaCerts, ctx.env));
        for (const r of plan.bundle.routes) {
          const problem = await secretSourceProblem(r.source, {
            env: ctx.env,
            baseDir: agent.baseDir,
          });
          if (problem) plan.warnings.push(`start will refuse route "${r.host}": ${problem}`);
        }
        if (opts.json) ctx.out(JSON.stringify(plan, null, 2));
        else if (opts.full) {
          const { stringify } = await import("yaml");
          ctx.out(stringify(plan, { lineWidth: 0 }));
        } else ctx.out(planSummary(plan));
        for (const w of plan.warnings) ctx.err(`warning: ${w}`);
      },
    );
}
