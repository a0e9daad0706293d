/**
 * Waits for the bundle's init to print its ready line, by following the
 * container's log: no polling, and a bundle that dies instead is noticed at
 * once (the log stream ends) and reported with the tail of what it said.
 */
import { READY_LINE } from "../../bundle/init/bundle_manifest.ts";
import type { DockerCli } from "../../engine/docker_cli.ts";
import { abortable } from "../../proc/abortable.ts";

const READY_TIMEOUT_MS = 90_000;

export async function waitBundleReady(
  docker: DockerCli,
  container: string,
  signal: AbortSignal,
): Promise<void> {
  const child = docker.spawn(["logs", "--follow", container]);
  const seen: string[] = [];
  const scan = async (stream: ReadableStream<Uint8Array>): Promise<boolean> => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const l of lines) {
        seen.push(l);
        if (l.trim() === READY_LINE) return true;
      }
    }
    return false;
  };
  const timeout = AbortSignal.timeout(READY_TIMEOUT_MS);
  try {
    // Ready as soon as either stream shows the line; not ready once both ended without it.
    const scans = [scan(child.process.stdout), scan(child.process.stderr)];
    const ready = await abortable(
      Promise.race([
        ...scans.map((s) => s.then((found) => found || new Promise<never>(() => {}))),
        Promise.all(scans).then((found) => found.some(Boolean)),
      ]),
      AbortSignal.any([signal, timeout]),
    );
    if (!ready) {
      throw new Error(
        `The bundle "${container}" exited before it was ready: ${seen.slice(-15).join("\n")}`,
      );
    }
  } catch (err) {
    if (timeout.aborted && !signal.aborted) {
      throw new Error(
        `The bundle "${container}" was not ready after ${READY_TIMEOUT_MS / 1000} s: ${
          seen.slice(-15).join("\n")
        }`,
      );
    }
    throw err;
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}
