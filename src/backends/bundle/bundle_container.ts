/**
 * The bundle container, shared by both runtimes: created as the plan says
 * (`bundle.container`), its config copied in before it starts (so the engine
 * need not share this host's filesystem), started, and read back through
 * the engine: its address, its readiness and its audit log, which is saved
 * on the host before the container goes.
 */
import { dirname } from "node:path";
import { type DockerCli, DockerCopyError } from "../../engine/docker_cli.ts";
import type { Plan } from "../../plan/plan_types.ts";
import type { BundleFiles } from "../../bundle/bundle_files.ts";
import { AUDIT_LOG_IN_BUNDLE } from "../../bundle/init/bundle_manifest.ts";
import { copyInTar, toContainerSpec } from "../container_spec.ts";
import { readTarFiles } from "../../archive/tar.ts";
import { makePrivateDir, writePrivateFile } from "../../state/private_files.ts";
import { throwIfCancelled } from "../../proc/signals.ts";

export async function createBundle(
  docker: DockerCli,
  plan: Plan,
  p: {
    image: string;
    files: BundleFiles;
    secretEnv: Record<string, string>;
    signal: AbortSignal;
  },
): Promise<void> {
  const c = plan.bundle.container;
  await docker.create(toContainerSpec(c, p.image, p.secretEnv));
  for (const copy of c.copyIn) {
    throwIfCancelled(p.signal);
    await docker.copyIn(c.name, "/", copyInTar(copy, p.files.files));
  }
  throwIfCancelled(p.signal);
  await docker.start(c.name);
}

/** The bundle's address on its network (what a VM's egress policy allows). */
export function bundleAddress(docker: DockerCli, plan: Plan): Promise<string> {
  return docker.containerAddress(plan.bundle.container.name, plan.bundle.container.network);
}

/** The audit log as it is in the bundle now (empty if nothing was logged yet). */
export async function readAuditLog(docker: DockerCli, container: string): Promise<Uint8Array> {
  try {
    const files = readTarFiles(await docker.copyOut(container, AUDIT_LOG_IN_BUNDLE));
    return [...files.values()][0] ?? new Uint8Array();
  } catch (err) {
    if (err instanceof DockerCopyError && /could not find the file/i.test(err.stderr)) {
      return new Uint8Array();
    }
    throw err;
  }
}

/**
 * Copies the audit log out to `dest` before the bundle is removed, so that a
 * session can be reviewed after `stop`. A bundle that is already gone has
 * nothing to save.
 */
export async function saveAuditLog(
  docker: DockerCli,
  container: string,
  dest: string,
): Promise<void> {
  let log: Uint8Array;
  try {
    log = await readAuditLog(docker, container);
  } catch (err) {
    if (err instanceof DockerCopyError) return;
    throw err;
  }
  if (log.length === 0) return;
  await makePrivateDir(dirname(dest));
  await writePrivateFile(dest, log);
}
