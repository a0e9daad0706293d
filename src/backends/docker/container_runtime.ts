/**
 * The docker runtime: the agent's place is a container with no network at
 * all (plan: `agent.container`). Its main process is bottle-forward, run as
 * the agent user, relaying 127.0.0.1 ports to the bundle's sockets on the
 * shared volume; it is in the image bottle layers over the agent's.
 */
import type { DockerCli } from "../../engine/docker_cli.ts";
import type {
  AgentRuntime,
  ExecOptions,
  InteractiveOptions,
  StartContext,
} from "../agent_runtime.ts";
import type { Plan } from "../../plan/plan_types.ts";
import type { RunResult } from "../../proc/runner.ts";
import { toContainerSpec } from "../container_spec.ts";
import * as L from "../../labels.ts";

export class ContainerRuntime implements AgentRuntime {
  readonly name = "docker" as const;
  constructor(private readonly docker: DockerCli) {}

  placeOf(plan: Plan): string {
    return agentContainer(plan).name;
  }

  async prepare(): Promise<void> {}

  async start(ctx: StartContext): Promise<void> {
    await this.docker.runDetached(
      toContainerSpec(agentContainer(ctx.plan), ctx.images.agent, ctx.agentSecretEnv),
    );
  }

  exec(place: string, argv: string[], opts: ExecOptions): Promise<RunResult> {
    return this.docker.run(
      this.docker.execArgv(place, argv, {
        user: opts.user,
        interactive: opts.stdin !== undefined,
        ...(opts.workdir ? { workdir: opts.workdir } : {}),
      }),
      opts.stdin !== undefined ? { stdin: opts.stdin } : {},
    );
  }

  async copyIn(place: string, dir: string, tar: Uint8Array, user: string): Promise<void> {
    if (user === "root" || user === "0") {
      await this.docker.copyIn(place, dir, tar);
      return;
    }
    // As the user itself: whatever the user could have put in the way (a
    // symlink) leads nowhere it could not write already.
    await this.exec(place, ["tar", "-x", "-f", "-", "-C", dir], { user, stdin: tar });
  }

  async execInteractive(place: string, argv: string[], opts: InteractiveOptions): Promise<number> {
    const r = await this.docker.run(
      this.docker.execArgv(place, argv, {
        interactive: opts.stdin ?? true,
        tty: opts.tty,
        user: opts.user,
        ...(opts.workdir ? { workdir: opts.workdir } : {}),
        ...(opts.env ? { env: opts.env } : {}),
      }),
      {
        stdin: opts.stdin ?? true ? "inherit" : "null",
        stdout: "inherit",
        stderr: "inherit",
        check: false,
        ...(opts.signal ? { signal: opts.signal } : {}),
      },
    );
    return r.code;
  }

  remove(place: string): Promise<void> {
    return this.docker.removeContainers([place]);
  }

  async state(place: string): Promise<string | undefined> {
    const r = await this.docker.run(["inspect", "--format", "{{.State.Status}}", place], {
      check: false,
    });
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  async listPlaces(): Promise<Map<string, string>> {
    const found = await this.docker.listContainers([
      `${L.MANAGED}=true`,
      `${L.BACKEND}=docker`,
      `${L.ROLE}=agent`,
    ]);
    return new Map(found.flatMap((c) => {
      const bottle = c.labels[L.BOTTLE_ID];
      return bottle ? [[bottle, c.name] as const] : [];
    }));
  }
}

function agentContainer(plan: Plan) {
  const c = plan.agent.container;
  if (!c) throw new Error(`Plan of "${plan.bottle.name}" has no agent container`);
  return c;
}
