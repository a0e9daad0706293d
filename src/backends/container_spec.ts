/**
 * From a planned container to what the engine is given: the spec for
 * `docker create` (the plan's settings, the built image, the secret values)
 * and the tar of the files the plan copies in before it starts.
 */
import type { ContainerSpec } from "../engine/docker_cli.ts";
import type { ContainerPlan, CopyInPlan } from "../plan/plan_types.ts";
import { writeTar } from "../archive/tar.ts";

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
    init: c.init,
    ...(c.entrypoint !== undefined ? { entrypoint: c.entrypoint } : {}),
    command: c.command,
  };
}

/**
 * The tar for one planned copy, extracted at "/": the files only, owned and
 * moded as planned (the engine makes missing parent dirs root-owned, 0755,
 * and leaves existing ones as the image has them). `contents` must hold
 * exactly the planned files.
 */
export function copyInTar(
  copy: CopyInPlan,
  contents: ReadonlyMap<string, Uint8Array | string>,
): Uint8Array {
  const [uid, gid] = copy.owner.split(":").map(Number) as [number, number];
  const dir = copy.dir.replace(/^\/+|\/+$/g, "");
  return writeTar(copy.files.map((f) => {
    const data = contents.get(f.name);
    if (data === undefined) throw new Error(`No contents for "${copy.dir}/${f.name}"`);
    return { path: `${dir}/${f.name}`, type: "file", mode: parseInt(f.mode, 8), uid, gid, data };
  }));
}
