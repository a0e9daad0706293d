/**
 * Every label bottle puts on the objects it creates (containers, networks,
 * images it built). They exist so that `bottle ls`, `stop` and `cleanup` find
 * what a bottle owns from the engine alone, even after the process that made
 * them was killed.
 */

/** Marks an object as bottle's at all: `cleanup --all` removes everything carrying it. */
export const MANAGED = "bottle.managed";
/** The bottle (name) an object belongs to: what `stop` and `cleanup` group by. */
export const BOTTLE_ID = "bottle.id";
/** The agent definition's name, for `bottle ls`. */
export const AGENT = "bottle.agent";
/** Which backend made it, so cleanup knows to look for a VM as well. */
export const BACKEND = "bottle.backend";
/** Role of the object inside the bottle (agent, bundle, outbound-net, sockets, workspace, seed). */
export const ROLE = "bottle.role";
/** Host and pid of the launching process: a dead pid marks an orphan. */
export const OWNER_HOST = "bottle.owner-host";
export const OWNER_PID = "bottle.owner-pid";
/** Build-context hash of an image bottle built, the image cache key. */
export const CONTEXT_HASH = "bottle.context-hash";

export type Role = "agent" | "bundle" | "outbound-net" | "sockets" | "workspace" | "seed";

export function objectLabels(
  base: Record<string, string>,
  role: Role,
): Record<string, string> {
  return { ...base, [ROLE]: role };
}
