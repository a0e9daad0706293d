/**
 * The launch steps that create nothing: what this version cannot run, the
 * host files the plan names, a name already in use (`checkLaunch`, before
 * anything exists), then the credentials and the images (`prepareLaunch`,
 * which may run while the network is being made). Independent work runs
 * concurrently.
 */
import type { LaunchRequest } from "./launch_request.ts";
import type { DockerCli } from "../../engine/docker_cli.ts";
import { ensureBottleImages } from "../../build/bottle_images.ts";
import { resolveRouteSecrets } from "../../secrets/route_secrets.ts";
import { checkPlanInputs } from "../../plan/plan_inputs.ts";
import { throwIfCancelled } from "../../proc/signals.ts";
import { pathExists } from "../../state/path_exists.ts";
import { UserError } from "../../errors.ts";
import { BOTTLE_ID } from "../../labels.ts";
import { proxyEnv } from "../../plan/proxy_env.ts";
import { registerSecret } from "../../proc/secrets.ts";

export interface Prepared {
  secretEnv: Record<string, string>;
  /** `agent` is the image the agent runs from (plan: `images.agentRun`). */
  images: { agent: string; bundle: string };
}

/** Everything that must hold before the first object is made. */
export async function checkLaunch(req: LaunchRequest, docker: DockerCli): Promise<void> {
  const { plan } = req;
  await Promise.all([
    checkPlanInputs(plan, req.agent.origin),
    assertNameFree(docker, plan.bottle.name, plan.bottle.stateDir),
  ]);
}

export async function prepareLaunch(req: LaunchRequest, docker: DockerCli): Promise<Prepared> {
  const { plan, signal } = req;
  const inputs = {
    buildCaPem: req.buildCaPem,
    env: req.env,
    cacheDir: req.cacheDir,
    ...(req.stateDir ? { stateDir: req.stateDir } : {}),
  };
  const buildOpts = { progress: req.progress, signal };
  const [secretEnv, built] = await Promise.all([
    resolveRouteSecrets(plan, req.env, req.agent.baseDir),
    ensureBottleImages(docker, plan.images, inputs, buildOpts),
  ]);
  throwIfCancelled(signal);
  // The gate's, supervise's and egress's tokens, where they need one: made for this bottle, now.
  for (
    const auth of [plan.bundle.gitGate?.auth, plan.bundle.supervise?.auth, plan.bundle.proxyAuth]
  ) {
    if (auth) secretEnv[auth.tokenEnv] = randomToken();
  }
  // The agent's proxy URLs carry egress's token.
  Object.assign(secretEnv, proxyEnv(plan.agent.proxy, secretEnv[plan.bundle.proxyAuth.tokenEnv]!));
  for (const name of plan.agent.proxy.env) registerSecret(secretEnv[name]!);
  return { secretEnv, images: { agent: built.run, bundle: built.bundle } };
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

function randomToken(): string {
  return [...crypto.getRandomValues(new Uint8Array(32))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}
