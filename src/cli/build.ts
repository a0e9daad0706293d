/** `bottle build [agent]`: build (or confirm cached) the agent and bundle images ahead of a start. */
import type { Command } from "commander";
import { makePlan } from "../plan/make_plan.ts";
import { hostFacts } from "../plan/host_facts.ts";
import { type ConfigOption, findAgent } from "./agent_options.ts";
import type { CliContext } from "./context.ts";
import { buildCaFiles, readBuildCas } from "../build/build_cas.ts";
import { ensureAgentImage, ensureBundleImage } from "../build/bottle_images.ts";
import { DockerCli } from "../backends/docker/docker_cli.ts";
import { collect } from "./start.ts";

export function registerBuild(program: Command, ctx: CliContext): void {
  program.command("build")
    .description("Build the images an agent needs (cached by build context)")
    .argument("[agent]", "agent name", "claude")
    .option("--build-ca <file>", "extra CA certificate for image builds (repeatable)", collect, [])
    .option("--force", "rebuild even when a cached image exists")
    .action(async (agentName: string, opts: { buildCa: string[]; force?: boolean }) => {
      const agent = await findAgent(ctx, program.opts<ConfigOption>(), agentName);
      const plan = makePlan(agent, hostFacts(ctx, {}));
      const inputs = {
        buildCaPem: await readBuildCas(buildCaFiles(opts.buildCa, agent.buildCaCerts, ctx.env)),
        env: ctx.env,
        cacheDir: ctx.dirs.cache,
      };
      const buildOpts = {
        progress: (m: string) => ctx.err(`bottle: ${m}`),
        signal: ctx.signal,
        force: opts.force ?? false,
      };
      const docker = new DockerCli(ctx.env.BOTTLE_DOCKER ?? "docker");
      ctx.out(await ensureAgentImage(docker, plan.images.agent, inputs, buildOpts));
      ctx.out(await ensureBundleImage(docker, plan.images.bundle, inputs, buildOpts));
    });
}
