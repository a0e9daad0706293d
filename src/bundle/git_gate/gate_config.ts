/**
 * The git gate's config (`git-gate.json` in the bundle's config dir), made
 * by the host at launch from the plan: which upstreams it serves, where it
 * listens, what each accepts in a push, and where each starts. Read by the
 * daemon and by its hooks, which git runs once per push.
 */
import type { GatePolicyPlan } from "../../plan/plan_types.ts";

export type GateUpstream = HostUpstream | RemoteUpstream;

export interface HostUpstream {
  name: string;
  kind: "host";
  /** The host repository's git dir as the bundle sees it. */
  bundlePath: string;
  landingPrefix: string;
  /** Where the bottle's branch starts: the host's HEAD, or the commit carrying uncommitted changes. */
  start: { branch?: string; commit?: string; carried: boolean };
  policy: GatePolicyPlan;
  /** `bundlePath` is the bundle's copy of the host repository (fetched back by `bottle fetch`). */
  copied?: boolean;
  /** Where landed objects are written (the host repository's objects are read-only here). */
  objectStore?: string;
}

/** A declared upstream: mirrored from `url` and pushed on to it, with the identity in `identity.env`. */
export interface RemoteUpstream {
  name: string;
  kind: "remote";
  url: string;
  identity?: { kind: "ssh-key" | "token"; env: string };
  /** ssh: the known_hosts entries the server's key must match. */
  knownHosts?: string;
  policy: GatePolicyPlan;
}

export interface GateConfig {
  bottle: string;
  listen: { host: string; port: number; socket?: string };
  auditLog: string;
  /** The gate's own bare mirrors, one `<name>.git` per upstream, and its hooks. */
  mirrorsDir: string;
  upstreams: GateUpstream[];
  /** Extra CAs (files in the bundle) trusted toward https upstreams besides the system roots. */
  upstreamCaFiles?: string[];
  /**
   * Where the gate listens on an address others on the host reach: the env
   * var holding the token every request must carry (Basic, any user name).
   */
  tokenEnv?: string;
  /** Env vars of the daemon that hold this bottle's secrets (never committed: the scan looks for them). */
  secretEnv: string[];
}

/** By hand, as the bundle manifest is checked: the hooks load this on every push. */
export function parseGateConfig(value: unknown): GateConfig {
  const fail = (why: string): never => {
    throw new Error(`Invalid git gate config: ${why}`);
  };
  const c = value as GateConfig;
  if (typeof c !== "object" || c === null) fail("not an object");
  if (typeof c.bottle !== "string" || !/^[a-z0-9-]+$/.test(c.bottle)) fail("bad bottle name");
  if (typeof c.mirrorsDir !== "string" || !c.mirrorsDir.startsWith("/")) fail("bad mirrorsDir");
  if (typeof c.auditLog !== "string") fail("bad auditLog");
  if (!Array.isArray(c.upstreams) || c.upstreams.length === 0) fail("no upstreams");
  if (!Array.isArray(c.secretEnv)) fail("secretEnv is not a list");
  for (const u of c.upstreams) {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(u.name)) fail(`bad upstream name ${JSON.stringify(u.name)}`);
    if (u.kind === "host") {
      if (!/^refs\/heads\/bottle\/[a-z0-9-]+\/$/.test(u.landingPrefix)) {
        fail(`upstream ${u.name}: bad landingPrefix`);
      }
    } else if (u.kind === "remote") {
      if (typeof u.url !== "string" || u.url.startsWith("-")) fail(`upstream ${u.name}: bad url`);
    } else {
      fail(`upstream ${(u as { name: string }).name}: unknown kind`);
    }
    const p = u.policy;
    if (!Array.isArray(p?.branches) || !Number.isInteger(p.maxPushBytes)) {
      fail(`upstream ${u.name}: bad policy`);
    }
  }
  return c;
}

export async function readGateConfig(path: string): Promise<GateConfig> {
  return parseGateConfig(JSON.parse(await Deno.readTextFile(path)));
}
