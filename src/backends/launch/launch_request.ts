/** What the CLI hands the launch pipeline: the plan and the invocation around it. */
import type { LoadedAgent } from "../../config/discover.ts";
import type { Plan } from "../../plan/plan_types.ts";

export interface LaunchRequest {
  plan: Plan;
  agent: LoadedAgent;
  /** Leave the bottle running and return once the agent is ready for exec. */
  detach: boolean;
  /** Extra CA certificates (PEM, may be "") for image builds. */
  buildCaPem: string;
  /** The invocation's environment (secrets by env var are read from it). */
  env: Record<string, string | undefined>;
  cacheDir: string;
  /** bottle's state dir (the build logs are kept there). */
  stateDir?: string;
  /** Whether this terminal is one (an interactive session gets a TTY). */
  tty: boolean;
  signal: AbortSignal;
  progress(message: string): void;
}
