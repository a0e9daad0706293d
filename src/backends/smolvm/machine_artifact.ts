/**
 * Turns the agent image (in the docker engine) into something smolvm boots.
 * Preferred: a `.smolmachine` made by `smolvm pack create`, cached by the
 * image ID so an unchanged image is never converted twice. pack only pulls
 * from a registry, so the image is `docker save`d and served by bottle's
 * in-process registry on loopback for the length of the pack, no registry
 * container and no push. Where pack fails, the VM is created from the same
 * archive on stdin (`machine create --image -`, smolvm >= 1.1.0) instead.
 * Each step (save, pack) is a progress status, so a terminal shows the step
 * and its elapsed time on one line.
 */
import { join } from "node:path";
import type { DockerCli } from "../../engine/docker_cli.ts";
import type { SmolvmCli } from "./smolvm_cli.ts";
import { serveRegistry } from "../../registry/registry_server.ts";
import { pathExists } from "../../state/path_exists.ts";
import { CommandError } from "../../proc/runner.ts";
import { formatElapsed, type Progress } from "../../build/build_image.ts";

export type MachineSource =
  /** A cached or freshly packed `.smolmachine` (`machine create --from`). */
  | { kind: "smolmachine"; path: string; cached: boolean }
  /** A `docker save` archive to stream into `machine create --image -`; the caller removes it. */
  | { kind: "archive"; path: string; why: string };

export interface ArtifactOptions {
  cacheDir: string;
  progress: Progress;
  signal: AbortSignal;
}

/** The repository the agent image is served under while smolvm pulls it. */
const SERVED_REPO = "bottle/agent";

export function artifactDir(cacheRoot: string): string {
  return join(cacheRoot, "smolmachines");
}

export async function machineSource(
  docker: DockerCli,
  smolvm: SmolvmCli,
  image: string,
  opts: ArtifactOptions,
): Promise<MachineSource> {
  const id = (await docker.run(["image", "inspect", "--format", "{{.Id}}", image])).stdout.trim();
  const key = id.replace(/^sha256:/, "").slice(0, 16);
  const dir = artifactDir(opts.cacheDir);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const stub = join(dir, key);
  const artifact = `${stub}.smolmachine`;
  if (await pathExists(artifact)) {
    opts.progress(`using cached ${artifact}`);
    return { kind: "smolmachine", path: artifact, cached: true };
  }

  const archive = join(dir, `${key}.tar`);
  const started = performance.now();
  const took = () => formatElapsed(performance.now() - started);
  opts.progress(`saving ${image} for smolvm`, { transient: true });
  try {
    await docker.run(["save", "--output", archive, image], { signal: opts.signal });
  } catch (err) {
    opts.progress(`saving ${image} failed after ${took()}`);
    await Deno.remove(archive).catch(() => {});
    throw err;
  }
  try {
    await using registry = await serveRegistry({
      archives: [{ path: archive, refs: { [`${SERVED_REPO}:${key}`]: image } }],
    });
    const ref = registry.ref(SERVED_REPO, key);
    opts.progress(`packing ${ref} into a .smolmachine`, { transient: true });
    const packed = await smolvm.packCreate({ image: ref, output: stub, signal: opts.signal });
    // pack also writes a self-contained executable at STUB; only the .smolmachine is used.
    await Deno.remove(stub).catch(() => {});
    await Deno.remove(archive);
    opts.progress(`packed ${packed} in ${took()}`);
    return { kind: "smolmachine", path: packed, cached: false };
  } catch (err) {
    if (opts.signal.aborted || !(err instanceof CommandError)) {
      opts.progress(`making ${image} a .smolmachine failed after ${took()}`);
      await Deno.remove(archive).catch(() => {});
      throw err;
    }
    const why = err.message;
    opts.progress(
      `smolvm pack from the local registry failed, creating the VM from the archive on stdin: ${why}`,
    );
    return { kind: "archive", path: archive, why };
  }
}

/** Removes (or, dry, lists) every cached VM artifact; the paths, in order. */
export async function pruneArtifacts(cacheRoot: string, dryRun: boolean): Promise<string[]> {
  const dir = artifactDir(cacheRoot);
  if (!(await pathExists(dir))) return [];
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(join(dir, e.name));
  out.sort();
  if (!dryRun) { for (const p of out) await Deno.remove(p, { recursive: true }); }
  return out;
}
