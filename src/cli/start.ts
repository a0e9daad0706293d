/** `bottle start [agent]`: plan, launch, run the agent; tear down when it ends. */
import type { Command } from "commander";
import { configOf, type ConfigOption } from "./agent_options.ts";
import { type BackendOption, backendOption, workspaceOption } from "./backend_option.ts";
import type { CliContext } from "./context.ts";
import { enginesOf } from "./backends.ts";
import { planFor } from "./planning.ts";
import { SilentExit, UserError } from "../errors.ts";
import { afterDashes, agentAndPrompt } from "./prompt_args.ts";
import { headlessPlan } from "../plan/headless.ts";
import { needsTerminal } from "./exec.ts";
import { throwIfCancelled } from "../proc/signals.ts";
import type { Plan } from "../plan/plan_types.ts";
import { stderrProgress } from "./progress_line.ts";

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function registerStart(program: Command, ctx: CliContext): void {
  program.command("start")
    .description("Start an agent in a new bottle (default agent: claude)")
    .argument("[agent]", "agent name (default: claude)")
    .argument(
      "[prompt...]",
      "with --detach: a task for claude -p, run in the background (after --)",
    )
    .addOption(backendOption())
    .addOption(workspaceOption())
    .option("-d, --detach", "leave the bottle running and return once it is ready")
    .option("--name <suffix>", "bottle name suffix (default: random)")
    .option("--fresh", "start Claude Code with an empty home (its kept settings and history stay)")
    .option("--build-ca <file>", "extra CA certificate for image builds (repeatable)", collect, [])
    .action(async (
      first: string | undefined,
      rest: string[],
      opts: LaunchOptions & { detach?: boolean },
    ) => {
      const operands = [...(first === undefined ? [] : [first]), ...rest];
      const dashed = afterDashes(ctx.argv ?? []);
      if (dashed === undefined && operands.length > 1) {
        throw new UserError(
          `bottle start: one agent name, got ${
            operands.map((w) => JSON.stringify(w)).join(" ")
          } (a prompt goes after --)`,
        );
      }
      const task = dashed === undefined ? undefined : agentAndPrompt(operands, dashed, "start");
      if (task && !opts.detach) {
        throw new UserError(
          "bottle start: a prompt runs unattended, with --detach (for one task on this terminal: bottle run)",
        );
      }
      const code = await startBottle(ctx, program, task?.agentName ?? first ?? "claude", opts, {
        detach: opts.detach ?? false,
        ...(task ? { session: (plan: Plan) => headlessPlan(plan, { prompt: task.prompt }) } : {}),
      });
      if (code !== 0) throw new SilentExit(code);
    });
}

export type LaunchOptions = BackendOption & ConfigOption & {
  name?: string;
  buildCa: string[];
  fresh?: boolean;
};

/**
 * Plans and launches a bottle; returns the session's exit code. `run`
 * passes a change to the plan (its headless session).
 */
export async function startBottle(
  ctx: CliContext,
  program: Command,
  agentName: string,
  opts: LaunchOptions,
  how: { detach: boolean; session?: (plan: Plan) => Plan },
): Promise<number> {
  const [{ launch }, { runtimeFor }, { buildCaFiles, readBuildCas }] = await Promise.all([
    import("../backends/launch/launch.ts"),
    import("../backends/engines.ts"),
    import("../build/build_cas.ts"),
  ]);
  const planned = await planFor(ctx, configOf(program, opts), agentName, opts);
  const { agent } = planned;
  const plan = how.session ? how.session(planned.plan) : planned.plan;
  // Claude Code's own session needs a terminal; without one it fails with its own words.
  if (plan.agent.session === "terminal" && !how.detach && !ctx.stdinIsTerminal) {
    if (needsTerminal(plan.agent.program)) {
      throw new UserError(
        "bottle start: Claude Code needs a terminal, and stdin is none (without one: bottle run -- PROMPT, or bottle start --detach -- PROMPT)",
      );
    }
  }
  for (const w of plan.warnings) ctx.err(`bottle: warning: ${w}`);
  const buildCaPem = await readBuildCas(
    buildCaFiles(opts.buildCa, agent.buildCaCerts, ctx.env),
  );
  ctx.err(`bottle: starting ${plan.bottle.name} (${plan.bottle.backend})`);
  const engines = await enginesOf(ctx);
  const code = await launch(
    {
      plan,
      agent,
      detach: how.detach,
      buildCaPem,
      env: ctx.env,
      cacheDir: ctx.dirs.cache,
      stateDir: ctx.dirs.state,
      tty: ctx.stdinIsTerminal,
      signal: ctx.signal,
      progress: stderrProgress(ctx),
    },
    engines.docker,
    runtimeFor(engines, plan.bottle.backend),
  );
  throwIfCancelled(ctx.signal); // a session ended by SIGTERM exits 143, after teardown
  if (how.detach) ctx.out(plan.bottle.name);
  return code;
}
