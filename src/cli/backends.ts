/** Which backend object serves a name, and finding the backend that holds a bottle. */
import type { Backend } from "../backends/backend.ts";
import { DockerBackend } from "../backends/docker/docker_backend.ts";
import type { Backend as BackendName } from "../plan/plan_types.ts";
import type { CliContext } from "./context.ts";
import { UserError } from "../errors.ts";
import { SmolmachinesBackend } from "../backends/smolvm/smolmachines_backend.ts";
import { SmolvmCli } from "../backends/smolvm/smolvm_cli.ts";
import { DockerCli } from "../backends/docker/docker_cli.ts";

/** The docker and smolvm binaries this invocation uses (BOTTLE_DOCKER, SMOLVM). */
function tools(ctx: CliContext): { docker: DockerCli; smolvm: SmolvmCli } {
  return {
    docker: new DockerCli(ctx.env.BOTTLE_DOCKER ?? "docker"),
    smolvm: new SmolvmCli(ctx.env.SMOLVM ? { binary: ctx.env.SMOLVM } : {}),
  };
}

export function backendFor(ctx: CliContext, name: BackendName): Backend {
  const { docker, smolvm } = tools(ctx);
  switch (name) {
    case "docker":
      return new DockerBackend(ctx.dirs.state, docker);
    case "smolmachines":
      return new SmolmachinesBackend(ctx.dirs.state, ctx.dirs.cache, smolvm, docker);
  }
}

/**
 * Backends to search for existing bottles. smolmachines joins only where
 * smolvm is installed: a host without it cannot have such bottles, and
 * `bottle ls` must not fail for want of it.
 */
export async function allBackends(ctx: CliContext): Promise<Backend[]> {
  const { docker, smolvm } = tools(ctx);
  const backends: Backend[] = [new DockerBackend(ctx.dirs.state, docker)];
  if (await smolvm.version().then(() => true, () => false)) {
    backends.push(new SmolmachinesBackend(ctx.dirs.state, ctx.dirs.cache, smolvm, docker));
  }
  return backends;
}

/** The backend that has a bottle of this name. */
export async function backendOf(ctx: CliContext, bottle: string): Promise<Backend> {
  for (const b of await allBackends(ctx)) {
    if ((await b.list()).some((s) => s.name === bottle)) return b;
  }
  throw new UserError(`No bottle named "${bottle}" (see bottle ls)`);
}
