/**
 * The one seam through which bottle reaches its engines: the docker and
 * smolvm binaries and the client settings of this invocation (its env,
 * passed in, never `Deno.env` read deep inside). Tests plug fakes in here.
 */
import { DockerCli } from "../engine/docker_cli.ts";
import { SmolvmCli } from "./smolvm/smolvm_cli.ts";
import type { Backend } from "../plan/plan_types.ts";
import type { AgentRuntime } from "./agent_runtime.ts";
import { ContainerRuntime } from "./docker/container_runtime.ts";
import { VmRuntime } from "./smolvm/vm_runtime.ts";

export interface Engines {
  docker: DockerCli;
  smolvm: SmolvmCli;
}

/** The engines named by the invocation's env: `BOTTLE_DOCKER`, `SMOLVM`, `DOCKER_HOST`, …. */
export function enginesFrom(env: Record<string, string | undefined>): Engines {
  return {
    docker: new DockerCli({ ...(env.BOTTLE_DOCKER ? { bin: env.BOTTLE_DOCKER } : {}), env }),
    smolvm: new SmolvmCli(env.SMOLVM ? { binary: env.SMOLVM } : {}),
  };
}

/** The runtime for a backend: a fresh one per launch (it keeps what `prepare` found). */
export function runtimeFor(engines: Engines, backend: Backend): AgentRuntime {
  switch (backend) {
    case "docker":
      return new ContainerRuntime(engines.docker);
    case "smolmachines":
      return new VmRuntime(engines.smolvm, engines.docker);
  }
}
