/**
 * The images a bottle runs: the agent's (built-in or the user's Dockerfile),
 * the bundle's, and the agent's run image (the agent's with bottle's
 * forwarder layered on). All go through ensureImage, so all are cached by
 * their build context.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DockerCli } from "../engine/docker_cli.ts";
import type { ImagePlan } from "../plan/plan_types.ts";
import { buildLogDir, type BuildOptions, ensureImage, ImageNotBuilt } from "./build_image.ts";
import type { Plan } from "../plan/plan_types.ts";
import { writeBundleScript } from "./bundle_script.ts";
import { UserError } from "../errors.ts";
import { hostDirs } from "../state/dirs.ts";
import { PIPELOCK_IMAGE_ENV } from "../bundle/pipelock/pipelock_release.ts";

const IMAGES_DIR = fileURLToPath(new URL("../../images/", import.meta.url));

export { PIPELOCK_IMAGE_ENV };

export interface ImageInputs {
  /** Extra CA certificates (PEM) for the build stages, or "". */
  buildCaPem: string;
  env: Record<string, string | undefined>;
  /** bottle's cache dir (bundle script cache). */
  cacheDir: string;
  /** bottle's state dir, where build logs are kept; default: the one `env` names. */
  stateDir?: string;
}

export function ensureAgentImage(
  docker: DockerCli,
  image: ImagePlan,
  inputs: ImageInputs,
  buildOpts: BuildOptions,
): Promise<string> {
  const opts = withLogDir(inputs, buildOpts);
  if (image.source !== "builtin") {
    return ensureImage(docker, {
      what: "agent image",
      repository: image.repository,
      contextDir: image.context!,
      dockerfile: image.dockerfile!,
      buildArgs: image.buildArgs,
      volatileBuildArgs: caArgs(inputs.buildCaPem),
    }, opts);
  }
  return withOwnContext("agent", (contextDir) =>
    ensureImage(docker, {
      what: "agent image",
      repository: image.repository,
      contextDir,
      dockerfile: join(contextDir, "Dockerfile"),
      buildArgs: image.buildArgs,
      volatileBuildArgs: caArgs(inputs.buildCaPem),
    }, opts));
}

/**
 * One of bottle's own build contexts (`images/<name>`), copied to a real
 * temporary dir for the build: in the compiled binary `images/` is in its
 * embedded file system, which bottle reads but the docker CLI cannot.
 */
async function withOwnContext<T>(name: string, build: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: `bottle-${name}-context-` });
  try {
    for await (const e of Deno.readDir(join(IMAGES_DIR, name))) {
      if (!e.isFile) throw new Error(`Unexpected ${e.name} in bottle's ${name} build context`);
      await Deno.writeFile(join(dir, e.name), await Deno.readFile(join(IMAGES_DIR, name, e.name)));
    }
    return await build(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

export async function ensureBundleImage(
  docker: DockerCli,
  image: ImagePlan,
  inputs: ImageInputs,
  buildOpts: BuildOptions,
): Promise<string> {
  const opts = withLogDir(inputs, buildOpts);
  const contextDir = await Deno.makeTempDir({ prefix: "bottle-bundle-context-" });
  try {
    for (const f of ["Dockerfile", "bottle-forward.c"]) {
      await Deno.copyFile(join(IMAGES_DIR, "bundle", f), join(contextDir, f));
    }
    await writeBundleScript(join(contextDir, "bottle-bundle"), inputs.cacheDir);
    const pipelock = inputs.env[PIPELOCK_IMAGE_ENV];
    try {
      return await ensureImage(docker, {
        what: "bundle image",
        repository: image.repository,
        contextDir,
        dockerfile: join(contextDir, "Dockerfile"),
        buildArgs: { ...image.buildArgs, ...(pipelock ? { PIPELOCK_IMAGE: pipelock } : {}) },
        volatileBuildArgs: caArgs(inputs.buildCaPem),
      }, opts);
    } catch (err) {
      // The usual cause where no registry is reachable: say what to do about it.
      if (err instanceof UserError && !pipelock && /pipelock/.test(err.message)) {
        throw new UserError(
          `${err.message}\nThe bundle copies pipelock from its pinned image; where that cannot be pulled, set ${PIPELOCK_IMAGE_ENV} to a local image holding pipelock at /pipelock`,
        );
      }
      throw err;
    }
  } finally {
    await Deno.remove(contextDir, { recursive: true });
  }
}

function withLogDir(inputs: ImageInputs, opts: BuildOptions): BuildOptions {
  if (opts.logDir) return opts;
  return { ...opts, logDir: buildLogDir(inputs.stateDir ?? hostDirs(inputs.env).state) };
}

function caArgs(pem: string): Record<string, string> {
  return pem ? { BOTTLE_BUILD_CA_PEM: pem } : {};
}

/** The agent image with the forwarder from the bundle image added (plan: `images.agentRun`). */
export function ensureAgentRunImage(
  docker: DockerCli,
  image: ImagePlan,
  built: { agent: string; bundle: string },
  opts: BuildOptions,
): Promise<string> {
  return withOwnContext("agent-run", (contextDir) =>
    ensureImage(docker, {
      what: "agent run image",
      repository: image.repository,
      contextDir,
      dockerfile: join(contextDir, "Dockerfile"),
      buildArgs: { AGENT_IMAGE: built.agent, BUNDLE_IMAGE: built.bundle },
    }, opts));
}

/**
 * All three images of a plan. Warm (all built), they are looked up side by
 * side; otherwise built one after the other, because the agent and bundle
 * images share their first stage and the run image is made from both.
 */
export async function ensureBottleImages(
  docker: DockerCli,
  images: Plan["images"],
  inputs: ImageInputs,
  buildOpts: BuildOptions,
): Promise<{ agent: string; bundle: string; run: string }> {
  const opts = withLogDir(inputs, buildOpts);
  if (!opts.force) {
    const look = { ...opts, lookOnly: true };
    try {
      const [agent, bundle] = await Promise.all([
        ensureAgentImage(docker, images.agent, inputs, look),
        ensureBundleImage(docker, images.bundle, inputs, look),
      ]);
      const run = await ensureAgentRunImage(docker, images.agentRun, { agent, bundle }, look);
      return { agent, bundle, run };
    } catch (err) {
      if (!(err instanceof ImageNotBuilt)) throw err;
    }
  }
  const agent = await ensureAgentImage(docker, images.agent, inputs, opts);
  const bundle = await ensureBundleImage(docker, images.bundle, inputs, opts);
  const run = await ensureAgentRunImage(docker, images.agentRun, { agent, bundle }, opts);
  return { agent, bundle, run };
}
