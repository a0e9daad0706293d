/** `bottle start [agent]`: plan, launch, run the agent; tear down when it ends. */
import type { Command } from "commander";
import type { ConfigOption } from "./agent_options.ts";
import { type BackendOption, backendOption } from "./backend_option.ts";
import type { CliContext } from "./context.ts";
import { enginesOf } from "./backends.ts";
import { planFor } from "./planning.ts";
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
      const [{ launch }, { runtimeFor }, { buildCaFiles, readBuildCas }] = await Promise.all([
        import("../backends/launch/launch.ts"),
        import("../backends/engines.ts"),
        import("../build/build_cas.ts"),
      ]);
      const { agent, plan } = await planFor(ctx, program.opts<ConfigOption>(), agentName, opts);
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
          detach: opts.detach ?? false,
          buildCaPem,
          env: ctx.env,
          cacheDir: ctx.dirs.cache,
          tty: ctx.stdinIsTerminal,
          signal: ctx.signal,
          progress: (m) => ctx.err(`bottle: ${m}`),
        },
        engines.docker,
        runtimeFor(engines, plan.bottle.backend),
      );
      throwIfCancelled(ctx.signal); // a session ended by SIGTERM exits 143, after teardown
      if (opts.detach) ctx.out(plan.bottle.name);
      if (code !== 0) throw new SilentExit(code);
    });
}
