/**
 * Which agent definitions exist and where each came from. Order of
 * precedence: `--config FILE` (alone), else `./bottle.yaml` in the project,
 * then the user's config dir, then the built-in agents; the first place that
 * defines a name wins.
 */
import { dirname, join, resolve } from "node:path";
import { loadAgentFile } from "./load.ts";
import { BUILTIN_ORIGIN, builtinAgents } from "./builtin.ts";
import type { AgentDefinition } from "./schema.ts";
import { UserError } from "../errors.ts";

export interface LoadedAgent {
  name: string;
  definition: AgentDefinition;
  /** The agent file's path, or "built-in". */
  origin: string;
  /** Relative paths in the definition resolve against this directory. */
  baseDir: string;
  /** Extra CA certificates for image builds, from the file's `build` section. */
  buildCaCerts: string[];
}

export interface DiscoverOptions {
  configFile?: string;
  cwd: string;
  userConfigDir: string;
}

export interface Discovery {
  agents: Map<string, LoadedAgent>;
  /** Files that were read, in precedence order. */
  files: string[];
  /** Definitions hidden by an earlier one of the same name. */
  shadowed: LoadedAgent[];
}

export const PROJECT_FILE = "bottle.yaml";

export async function discoverAgents(opts: DiscoverOptions): Promise<Discovery> {
  const candidates = opts.configFile !== undefined
    ? [resolve(opts.cwd, opts.configFile)]
    : [join(opts.cwd, PROJECT_FILE), join(opts.userConfigDir, PROJECT_FILE)].filter(exists);

  const agents = new Map<string, LoadedAgent>();
  const shadowed: LoadedAgent[] = [];
  const add = (a: LoadedAgent) => agents.has(a.name) ? shadowed.push(a) : agents.set(a.name, a);

  for (const file of candidates) {
    const parsed = await loadAgentFile(file);
    const baseDir = dirname(file);
    const buildCaCerts = parsed.build.ca_certs.map((p) => resolve(baseDir, p));
    for (const [name, definition] of Object.entries(parsed.agents)) {
      add({ name, definition, origin: file, baseDir, buildCaCerts });
    }
  }
  for (const [name, definition] of Object.entries(builtinAgents())) {
    add({ name, definition, origin: BUILTIN_ORIGIN, baseDir: opts.cwd, buildCaCerts: [] });
  }
  return { agents, files: candidates, shadowed };
}

/** Looks up one agent by name, with the list of known names when it is missing. */
export function pickAgent(d: Discovery, name: string): LoadedAgent {
  const agent = d.agents.get(name);
  if (agent) return agent;
  const known = [...d.agents.keys()].sort().join(", ");
  const where = d.files.length ? ` in ${d.files.map((f) => `"${f}"`).join(", ")} or built-in` : "";
  throw new UserError(`Unknown agent "${name}"${where}: known agents are ${known}`);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
