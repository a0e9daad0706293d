/**
 * bottle-forward, the agent container's relay to the bundle's sockets, is
 * built into the bundle image (static, for the engine's architecture). It
 * is taken out of the image once per image ID and kept in the cache, so a
 * warm start copies it into the agent container without touching the
 * bundle image again.
 */
import { join } from "node:path";
import type { DockerCli } from "../../engine/docker_cli.ts";
import { readTarFiles } from "../../archive/tar.ts";
import { FORWARDER_IN_BUNDLE_IMAGE } from "../../bundle/init/bundle_manifest.ts";
import { writePrivateFile } from "../../state/private_files.ts";
import { MANAGED } from "../../labels.ts";

export async function forwarderBinary(
  docker: DockerCli,
  bundleImage: string,
  cacheDir: string,
): Promise<Uint8Array> {
  const id = await docker.imageId(bundleImage);
  if (!id) throw new Error(`The bundle image "${bundleImage}" is not in the engine`);
  const dir = join(cacheDir, "forwarder");
  const cached = join(dir, `${id.replace(/^sha256:/, "").slice(0, 32)}`);
  try {
    return await Deno.readFile(cached);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  // A created (never started) container is enough to copy a file out of.
  const holder = `bottle-forwarder-${crypto.randomUUID().slice(0, 8)}`;
  await docker.run(["create", "--name", holder, "--label", `${MANAGED}=true`, bundleImage]);
  try {
    const tar = await docker.copyOut(holder, FORWARDER_IN_BUNDLE_IMAGE);
    const binary = [...readTarFiles(tar).values()][0];
    if (!binary || binary.length === 0) {
      throw new Error(`The bundle image "${bundleImage}" has no ${FORWARDER_IN_BUNDLE_IMAGE}`);
    }
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const partial = `${cached}.${Deno.pid}.partial`;
    await writePrivateFile(partial, binary);
    await Deno.rename(partial, cached);
    return binary;
  } finally {
    await docker.removeContainers([holder]);
  }
}
