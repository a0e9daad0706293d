/**
 * One interface, one method per verb, for every place a bottle can run.
 * The CLI only ever talks to this; `docker` and `smolmachines` implement it.
 */
import type { LoadedAgent } from "../config/discover.ts";
import type { Plan } from "../plan/plan_types.ts";
import type { Backend as BackendName } from "../plan/plan_types.ts";

export interface LaunchRequest {
  plan: Plan;
  agent: LoadedAgent;
  /** Leave the bottle running and return once the agent is ready for exec. */
  detach: boolean;
  /** Extra CA certificates (PEM, may be "") for image builds. */
  buildCaPem: string;
  env: Record<string, string | undefined>;
  signal: AbortSignal;
  progress(message: string): void;
}

export interface BottleSummary {
  name: string;
  agent: string;
  backend: BackendName;
  state: string;
  createdAt: string;
}

export interface Backend {
  readonly name: BackendName;
  /** Starts a bottle; returns the agent's exit code (0 when detached). Tears down on every failure. */
  launch(req: LaunchRequest): Promise<number>;
  /** Bottles this backend knows of, found by label. */
  list(): Promise<BottleSummary[]>;
  /** Removes everything a bottle owns; throws UserError if there is no such bottle. */
  stop(name: string): Promise<void>;
  /** Runs argv in the bottle's agent; returns its exit code. */
  exec(name: string, argv: string[], opts: { tty: boolean; user?: string }): Promise<number>;
  /** The argv that starts the agent program in a running bottle (for attach). */
  agentCommand(name: string): Promise<string[]>;
  /** Names of bottles whose launcher died without finishing or that are unrecorded (all, with `all`). */
  orphans(all: boolean): Promise<string[]>;
}
