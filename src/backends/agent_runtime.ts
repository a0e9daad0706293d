/**
 * The agent's place to run: what the docker and smolmachines runtimes each
 * implement, and all they implement. Everything else about a bottle (the
 * plan, its bundle and network, provisioning, the session, stop and
 * cleanup) is the one pipeline in `launch/` and `bottles.ts`, shared by both.
 *
 * A place is named by the plan (`agent.container.name` or `vm.machine`).
 */
import type { Backend, Plan } from "../plan/plan_types.ts";
import type { RunResult } from "../proc/runner.ts";
import type { BottleRecord } from "../state/bottle_record.ts";

export interface StartContext {
  plan: Plan;
  /** The built agent and bundle images (engine references). */
  images: { agent: string; bundle: string };
  /** Values of the agent's secret variables (`agent.proxy.env`): the proxy URLs with the credential. */
  agentSecretEnv: Record<string, string>;
  /** The bundle's address on its network, once the bundle is ready (asked only by runtimes that need it). */
  bundleAddress(): Promise<string>;
  /** The host ports of the bundle's published ports (plan: `bundle.container.publish`), once it is ready. */
  bundlePorts(): Promise<Record<number, number>>;
  cacheDir: string;
  signal: AbortSignal;
  progress(message: string): void;
}

export interface PrepareContext
  extends Omit<StartContext, "bundleAddress" | "bundlePorts" | "agentSecretEnv"> {
  /** The launch's teardown stack, for temporary files the runtime makes. */
  stack: AsyncDisposableStack;
}

export interface ExecOptions {
  /** A user name or uid; "root" or "0" for root. */
  user: string;
  workdir?: string;
  /** Bytes for the command's stdin. */
  stdin?: Uint8Array;
}

export interface InteractiveOptions {
  user: string;
  workdir?: string;
  tty: boolean;
  /** Attach this process's stdin (default true); a headless session has none. */
  stdin?: boolean;
  env?: Record<string, string>;
  /** Ends the command (and so the session) when aborted. */
  signal?: AbortSignal;
}

export interface AgentRuntime {
  readonly name: Backend;
  /** The place's name in this plan. */
  placeOf(plan: Plan): string;
  /**
   * What must hold before anything is created (a supported smolvm, the
   * agent image in the form the runtime boots). Creates nothing that
   * outlives the launch except caches.
   */
  prepare(ctx: PrepareContext): Promise<void>;
  /**
   * Creates and starts the place. Its removal is the caller's (`remove`),
   * registered before this is called.
   */
  start(ctx: StartContext): Promise<void>;
  /** Runs argv in the place, output captured (provisioning). */
  exec(place: string, argv: string[], opts: ExecOptions): Promise<RunResult>;
  /** Extracts a tar archive into `dir` of the place, as `user`. */
  copyIn(place: string, dir: string, tar: Uint8Array, user: string): Promise<void>;
  /** Runs argv on this terminal; returns its exit code. */
  execInteractive(place: string, argv: string[], opts: InteractiveOptions): Promise<number>;
  /**
   * Cuts the place off from what serves it on the host, before the bundle
   * goes (a VM's relay: once the bundle's published port is free, any local
   * process could take it, and nothing may be relayed there).
   */
  cutOff?(place: string, record?: Pick<BottleRecord, "relayDir">): Promise<void>;
  /**
   * Stops and removes the place, and what serves it on the host (a VM's
   * relay: the bottle's record names it when another process removes it);
   * a place that is not there is fine.
   */
  remove(place: string, record?: Pick<BottleRecord, "relayDir">): Promise<void>;
  /** The place's state ("running", "exited", …), or undefined if it does not exist. */
  state(place: string): Promise<string | undefined>;
  /** Places of this runtime that carry bottle's name scheme, by bottle name (for cleanup). */
  listPlaces(): Promise<Map<string, string>>;
}
