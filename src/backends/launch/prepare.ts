/**
 * The launch steps that can fail without leaving anything behind: what this
 * version cannot run, the host files the plan names, a name already in use,
 * the credentials and the images. Independent checks run concurrently.
 */
import type { LaunchRequest } from "./launch_request.ts";
import type { DockerCli } from "../../engine/docker_cli.ts";
import { ensureAgentImage, ensureBundleImage } from "../../build/bottle_images.ts";
import { resolveRouteSecrets } from "../../secrets/route_secrets.ts";
import { checkPlanInputs } from "../../plan/plan_inputs.ts";
import { throwIfCancelled } from "../../proc/signals.ts";
import { pathExists } from "../../state/path_exists.ts";
import { UserError } from "../../errors.ts";
import { BOTTLE_ID } from "../../labels.ts";

export interface Prepared {
  secretEnv: Record<string, string>;
  images: { agent: string; bundle: string };
}

export async function prepareLaunch(req: LaunchRequest, docker: DockerCli): Promise<Prepared> {
  const { plan, signal } = req;
  const unsupported = plan.bundle.daemons.filter((d) => d === "git-gate" || d === "supervise");
  if (unsupported.length > 0) {
    throw new UserError(
      `Agent "${plan.bottle.agent}" needs ${
        unsupported.join(" and ")
      }, which this version of bottle does not ship yet: remove git/supervise from its definition`,
    );
  }
  await checkPlanInputs(plan, req.agent.origin);
  const inputs = { buildCaPem: req.buildCaPem, env: req.env, cacheDir: req.cacheDir };
  const buildOpts = { progress: req.progress, signal };
  // Builds one after the other: the two images share their first stage.
  const images = async () => ({
    agent: await ensureAgentImage(docker, plan.images.agent, inputs, buildOpts),
    bundle: await ensureBundleImage(docker, plan.images.bundle, inputs, buildOpts),
  });
  const [, secretEnv, built] = await Promise.all([
    assertNameFree(docker, plan.bottle.name, plan.bottle.stateDir),
    resolveRouteSecrets(plan, req.env, req.agent.baseDir),
    images(),
  ]);
  throwIfCancelled(signal);
  return { secretEnv, images: built };
}

/**
 * A bottle of this name must not exist: teardown removes the names the plan
 * gives, so starting over a running bottle would remove it.
 */
async function assertNameFree(docker: DockerCli, name: string, stateDir: string): Promise<void> {
  const [hasState, containers] = await Promise.all([
    pathExists(stateDir),
    docker.listContainers([`${BOTTLE_ID}=${name}`]),
  ]);
  if (hasState || containers.length > 0) {
    throw new UserError(
      `A bottle named "${name}" already exists: stop it first (bottle stop ${name}) or choose another --name`,
    );
  }
}
