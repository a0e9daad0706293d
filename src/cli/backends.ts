/** Which backend object serves a name, and finding the backend that holds a bottle. */
import type { Backend } from "../backends/backend.ts";
import { DockerBackend } from "../backends/docker/docker_backend.ts";
import type { Backend as BackendName } from "../plan/plan_types.ts";
import type { CliContext } from "./context.ts";
import { UserError } from "../errors.ts";

export function backendFor(ctx: CliContext, name: BackendName): Backend {
  switch (name) {
    case "docker":
      return new DockerBackend(ctx.dirs.state);
    case "smolmachines":
      throw new UserError("The smolmachines backend is not available in this version of bottle");
  }
}

export function allBackends(ctx: CliContext): Backend[] {
  return [new DockerBackend(ctx.dirs.state)];
}

/** The backend that has a bottle of this name. */
export async function backendOf(ctx: CliContext, bottle: string): Promise<Backend> {
  for (const b of allBackends(ctx)) {
    if ((await b.list()).some((s) => s.name === bottle)) return b;
  }
  throw new UserError(`No bottle named "${bottle}" (see bottle ls)`);
}
