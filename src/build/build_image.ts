/**
 * Builds an image on demand, cached by a hash of its build context: a warm
 * start finds the tag and skips `docker build`. The build's own output is
 * shown as progress, and a failed build says which image and why.
 */
import type { DockerCli } from "../engine/docker_cli.ts";
import { CommandError } from "../proc/runner.ts";
import { CONTEXT_HASH, MANAGED } from "../labels.ts";
import { contextHash } from "./context_hash.ts";
import { UserError } from "../errors.ts";

export interface ImageBuild {
  /** What the image is, for messages ("agent image", "bundle image"). */
  what: string;
  repository: string;
  contextDir: string;
  dockerfile: string;
  buildArgs: Record<string, string>;
  /** Build arguments that do not change the cache key (extra CAs are trust, not content). */
  volatileBuildArgs?: Record<string, string>;
}

export interface BuildOptions {
  progress: (line: string) => void;
  signal?: AbortSignal;
  /** Rebuild even if the tag exists. */
  force?: boolean;
  /** Only look: an image that is not built throws `ImageNotBuilt` instead of building. */
  lookOnly?: boolean;
}

/** `lookOnly` found no image for the build context. */
export class ImageNotBuilt extends Error {
  override name = "ImageNotBuilt";
}

export async function ensureImage(
  docker: DockerCli,
  b: ImageBuild,
  opts: BuildOptions,
): Promise<string> {
  const hash = await contextHash(b.contextDir, [b.dockerfile], b.buildArgs);
  const tag = `${b.repository}:${hash.slice(0, 16)}`;
  if (!opts.force && await docker.imageExists(tag)) return tag;
  if (opts.lookOnly) throw new ImageNotBuilt(`${b.what} ${tag} is not built`);

  opts.progress(`building ${b.what} ${tag}`);
  const args = [
    "build",
    "--tag",
    tag,
    "--file",
    b.dockerfile,
    "--label",
    `${MANAGED}=true`,
    "--label",
    `${CONTEXT_HASH}=${hash}`,
  ];
  const all = { ...b.buildArgs, ...b.volatileBuildArgs };
  // Values go through the docker client's env (`--build-arg NAME`), keeping
  // long PEM blobs and anything sensitive off argv.
  for (const k of Object.keys(all)) args.push("--build-arg", k);
  args.push(b.contextDir);

  const child = docker.spawn(args, { env: all, ...(opts.signal ? { signal: opts.signal } : {}) });
  const tail: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        tail.push(line);
        if (tail.length > 30) tail.shift();
        opts.progress(`  ${line}`);
      }
    }
    if (buf) tail.push(buf);
  };
  const [status] = await Promise.all([
    child.status,
    pump(child.process.stdout),
    pump(child.process.stderr),
  ]);
  if (status.code !== 0) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const err = new CommandError(
      [docker.bin, ...args],
      status.code,
      tail.join("\n"),
      status.timedOut,
    );
    throw new UserError(`Cannot build the ${b.what}: ${err.message}`);
  }
  return tag;
}
