/** `bottle build [agent]`: build (or confirm cached) the agent and bundle images ahead of a start. */
import type { Command } from "commander";
import { configOf, type ConfigOption } from "./agent_options.ts";
import type { CliContext } from "./context.ts";
import { collect } from "./start.ts";
import { enginesOf } from "./backends.ts";
import { planFor } from "./planning.ts";
import { stderrProgress } from "./progress_line.ts";

export function registerBuild(program: Command, ctx: CliContext): void {
  program.command("build")
    .description("Build the images an agent needs (cached by build context)")
    .argument("[agent]", "agent name", "claude")
    .option("--build-ca <file>", "extra CA certificate for image builds (repeatable)", collect, [])
    .option("--force", "rebuild even when a cached image exists")
    .action(
      async (agentName: string, opts: ConfigOption & { buildCa: string[]; force?: boolean }) => {
        const [{ buildCaFiles, readBuildCas }, { ensureBottleImages }] = await Promise.all([
          import("../build/build_cas.ts"),
          import("../build/bottle_images.ts"),
        ]);
        const { agent, plan } = await planFor(ctx, configOf(program, opts), agentName, {});
        const inputs = {
          buildCaPem: await readBuildCas(buildCaFiles(opts.buildCa, agent.buildCaCerts, ctx.env)),
          env: ctx.env,
          cacheDir: ctx.dirs.cache,
          stateDir: ctx.dirs.state,
        };
        const buildOpts = {
          progress: stderrProgress(ctx),
          signal: ctx.signal,
          force: opts.force ?? false,
        };
        const { docker } = await enginesOf(ctx);
        const built = await ensureBottleImages(docker, plan.images, inputs, buildOpts);
        for (const tag of [built.agent, built.bundle, built.run]) ctx.out(tag);
      },
    );
}
