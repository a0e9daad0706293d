/**
 * From a planned container to what the engine is given: the spec for
 * `docker create` (the plan's settings, the built image, the secret values).
 */
import type { ContainerSpec } from "../engine/docker_cli.ts";
import type { ContainerPlan } from "../plan/plan_types.ts";

export function toContainerSpec(
  c: ContainerPlan,
  image: string,
  secretEnv: Record<string, string>,
): ContainerSpec {
  const missing = c.secretEnv.filter((k) => secretEnv[k] === undefined);
  if (missing.length > 0) throw new Error(`No value for ${missing.join(", ")} of "${c.name}"`);
  return {
    name: c.name,
    image,
    network: c.network,
    labels: c.labels,
    env: c.env,
    secretEnv: Object.fromEntries(c.secretEnv.map((k) => [k, secretEnv[k]!])),
    volumes: c.volumes,
    mounts: c.mounts,
    user: c.user,
    ...(c.workdir ? { workdir: c.workdir } : {}),
    capDrop: c.capDrop,
    securityOpt: c.securityOpt,
    resources: c.resources,
    addHosts: c.addHosts,
    ...(c.publish ? { publish: c.publish } : {}),
    init: c.init,
    interactive: c.interactive,
    ...(c.entrypoint !== undefined ? { entrypoint: c.entrypoint } : {}),
    command: c.command,
  };
}
