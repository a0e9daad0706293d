/**
 * The supervise daemon's config (`supervise.json` in the bundle's config
 * dir), made by the host from the plan: where the queue is, how long a
 * request waits for its human, and where the daemon listens.
 */
export const SUPERVISE_CONFIG_FILE = "supervise.json";

export interface SuperviseConfig {
  bottle: string;
  /** The queue dir as the bundle sees it. */
  queueDir: string;
  auditLog: string;
  listen: { host: string; port: number; socket?: string };
  /** How long a request waits before the agent is told nobody answered. */
  timeoutSeconds: number;
  /**
   * Where the daemon listens on an address others on the host reach: the
   * env var holding the token every request must carry (Bearer).
   */
  tokenEnv?: string;
}

/** By hand, as the other bundle configs: the daemon loads nothing it does not need. */
export function parseSuperviseConfig(value: unknown): SuperviseConfig {
  const fail = (why: string): never => {
    throw new Error(`Invalid supervise config: ${why}`);
  };
  const c = value as SuperviseConfig;
  if (typeof c !== "object" || c === null) fail("not an object");
  if (typeof c.bottle !== "string" || !/^[a-z0-9-]+$/.test(c.bottle)) fail("bad bottle name");
  if (typeof c.queueDir !== "string" || !c.queueDir.startsWith("/")) fail("bad queueDir");
  if (typeof c.auditLog !== "string") fail("bad auditLog");
  if (!Number.isInteger(c.listen?.port) || typeof c.listen.host !== "string") fail("bad listen");
  if (!(Number.isFinite(c.timeoutSeconds) && c.timeoutSeconds > 0)) fail("bad timeoutSeconds");
  if (c.tokenEnv !== undefined && typeof c.tokenEnv !== "string") fail("bad tokenEnv");
  return c;
}

export async function readSuperviseConfig(path: string): Promise<SuperviseConfig> {
  return parseSuperviseConfig(JSON.parse(await Deno.readTextFile(path)));
}
