/**
 * Asks the docker CLI what engine it reaches (`docker info` and the current
 * context), for what depends on the engine's kind before anything is made:
 * how a smolmachines VM reaches its bundle. `bottle doctor` reads the same.
 */
import type { DockerCli } from "./docker_cli.ts";
import {
  classifyEngine,
  type DockerContext,
  type DockerInfo,
  type EngineKind,
} from "./engine_kind.ts";

export async function readEngineKind(docker: DockerCli): Promise<EngineKind> {
  const [info, context] = await Promise.all([
    docker.run(["info", "--format", "{{json .}}"], { timeoutMs: 15_000 }),
    docker.run(["context", "inspect"], { check: false, timeoutMs: 15_000 }),
  ]);
  const parsed = JSON.parse(info.stdout) as DockerInfo;
  // The client runs here: its OS is this host's, also where an old client does not say.
  parsed.ClientInfo = { ...parsed.ClientInfo, Os: parsed.ClientInfo?.Os ?? Deno.build.os };
  return classifyEngine(
    parsed,
    parseDockerContext(context.code === 0 ? context.stdout : undefined, parsed),
  );
}

/** The current context from `docker context inspect` (an array of one), or what `docker info` says. */
function parseDockerContext(stdout: string | undefined, info: DockerInfo): DockerContext {
  try {
    if (stdout !== undefined) {
      const [c] = JSON.parse(stdout) as {
        Name?: string;
        Endpoints?: { docker?: { Host?: string } };
      }[];
      if (c) return { name: c.Name ?? "", endpoint: c.Endpoints?.docker?.Host ?? "" };
    }
  } catch {
    // fall through: an old client, or a context it cannot read
  }
  return { name: info.ClientInfo?.Context ?? "default", endpoint: "" };
}
