/**
 * The bundle image's contract with the host: where its config is copied
 * (`/etc/bottle`, before the container starts), what the init reads there
 * (`bundle.json`: which daemons, on which ports), where the agent-facing
 * sockets and the audit log live, and which user it runs as. Written by the
 * host from the plan, so the bundle image carries no per-bottle state.
 */
export const BUNDLE_CONFIG_DIR = "/etc/bottle";
export const BUNDLE_MANIFEST = `${BUNDLE_CONFIG_DIR}/bundle.json`;
/** The git gate's config in the config dir (made at launch: it holds the starting commit). */
export const GATE_CONFIG_FILE = "git-gate.json";
/** The config of the credential routes' own pipelock (`pipelock-routes`). */
export const PIPELOCK_ROUTES_CONFIG = "pipelock-routes.yaml";
/** The audit log inside the bundle; read back through the engine (`bottle logs`). */
export const BUNDLE_LOG_DIR = "/var/log/bottle";
export const AUDIT_LOG = "audit.jsonl";
export const AUDIT_LOG_IN_BUNDLE = `${BUNDLE_LOG_DIR}/${AUDIT_LOG}`;
/**
 * Where the bundle serves its agent-facing daemons as Unix sockets: a
 * per-bottle volume, mounted read-write here and read-only in the agent.
 */
export const SOCKETS_DIR = "/run/bottle/sockets";
/** The bundle's daemons run as this unprivileged user (no capabilities either). */
export const BUNDLE_UID = 65532;
/** How the plan names each credential route's secret (`BOTTLE_ROUTE_<n>`): egress gets only these. */
export const ROUTE_SECRET_PREFIX = "BOTTLE_ROUTE_";
/** Egress's own secrets (its proxy credential), besides the routes'. */
export const EGRESS_SECRET_PREFIX = "BOTTLE_EGRESS_";
/** The agent-side relay, copied out of the bundle image into each agent container. */
export const FORWARDER_IN_BUNDLE_IMAGE = "/opt/bottle/bottle-forward";
/** Printed once every selected daemon answers its health check. */
export const READY_LINE = "bottle-bundle: ready";

const DAEMONS = ["egress", "pipelock", "pipelock-routes", "git-gate", "supervise"] as const;
const PORT_KEYS = [
  "egress",
  "pipelock",
  "pipelockRoutes",
  "health",
  "gitGate",
  "supervise",
] as const;

/**
 * The ports every bundle uses. Fixed, so a daemon's argv (its permissions
 * name its ports) is known before the manifest arrives: init starts egress
 * that early.
 */
export const BUNDLE_PORTS = {
  egress: 3128,
  pipelock: 8888,
  pipelockRoutes: 8889,
  health: 9099,
  gitGate: 8080,
  supervise: 8090,
} as const;

export interface BundleManifest {
  bottle: string;
  daemons: (typeof DAEMONS)[number][];
  ports: {
    egress: number;
    /** pipelock for every host but the credential routes: it scans every header. */
    pipelock: number;
    /** pipelock for the credential routes alone (with `pipelock-routes`): the injected headers exempt. */
    pipelockRoutes?: number;
    health: number;
    gitGate?: number;
    supervise?: number;
  };
}

/**
 * Checks what init reads. By hand, not with the schema library the rest of
 * bottle uses: init is the first process of every bundle and loading that
 * library would cost each launch tens of milliseconds.
 */
export function parseBundleManifest(value: unknown): BundleManifest {
  const fail = (why: string): never => {
    throw new Error(`Invalid bundle manifest: ${why}`);
  };
  const m = value as Record<string, unknown>;
  if (typeof m !== "object" || m === null) fail("not an object");
  const extra = Object.keys(m).filter((k) => !["bottle", "daemons", "ports"].includes(k));
  if (extra.length) fail(`unknown keys ${extra.join(", ")}`);
  if (typeof m.bottle !== "string") fail("bottle is not a string");
  const daemons = m.daemons as unknown[];
  if (!Array.isArray(daemons) || daemons.length === 0) fail("daemons is not a non-empty list");
  for (const d of daemons) {
    if (!DAEMONS.includes(d as (typeof DAEMONS)[number])) fail(`unknown daemon ${String(d)}`);
  }
  const ports = m.ports as Record<string, unknown>;
  if (typeof ports !== "object" || ports === null) fail("ports is not an object");
  for (const [k, v] of Object.entries(ports)) {
    if (!PORT_KEYS.includes(k as (typeof PORT_KEYS)[number])) fail(`unknown port ${k}`);
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) fail(`bad port ${k}`);
  }
  for (const k of ["egress", "pipelock", "health"]) {
    if (ports[k] === undefined) fail(`ports.${k} is missing`);
  }
  return m as unknown as BundleManifest;
}
