/**
 * Where bottle keeps things on the host, following the XDG base directory
 * layout on Linux and using the same layout on macOS (one documented place
 * beats two). Overridable with the XDG variables, which tests use.
 */
import { join } from "node:path";

export interface HostDirs {
  config: string;
  state: string;
  cache: string;
}

export function hostDirs(env: Record<string, string | undefined>): HostDirs {
  const home = env.HOME ?? "/";
  return {
    config: join(env.XDG_CONFIG_HOME || join(home, ".config"), "bottle"),
    state: join(env.XDG_STATE_HOME || join(home, ".local", "state"), "bottle"),
    cache: join(env.XDG_CACHE_HOME || join(home, ".cache"), "bottle"),
  };
}

/** Where the agents' kept homes are, one dir per agent (`bottle cleanup --homes` removes them). */
export function keptHomesDir(stateRoot: string): string {
  return join(stateRoot, "homes");
}
