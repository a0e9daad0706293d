/**
 * How the bundle init starts each daemon and knows it is up. Egress and
 * the other bottle daemons are this same bundle script run with another
 * subcommand; pipelock is its own binary, listening on loopback only so the
 * agent can never reach it except through egress.
 */
import { BUNDLE_CONFIG_DIR, type BundleManifest } from "./bundle_manifest.ts";
import { egressPermissions } from "../egress/permissions.ts";
import {
  AUDIT_LOG_IN_BUNDLE,
  BUNDLE_PORTS,
  EGRESS_SECRET_PREFIX,
  GATE_CONFIG_FILE,
  PIPELOCK_ROUTES_CONFIG,
  ROUTE_SECRET_PREFIX,
  SOCKETS_DIR,
} from "./bundle_manifest.ts";
import { SUPERVISE_CONFIG_FILE } from "../supervise/supervise_config.ts";
import { QUEUE_IN_BUNDLE } from "../supervise/queue_files.ts";

/** The git gate's secrets: `BOTTLE_GIT_IDENTITY_<n>` and `BOTTLE_GIT_GATE_TOKEN`. */
export const GATE_SECRET_PREFIX = "BOTTLE_GIT";

/** The supervise daemon's token is the one secret it gets. */
export const SUPERVISE_SECRET_PREFIX = "BOTTLE_SUPERVISE_";

export interface DaemonSpec {
  name: string;
  argv: string[];
  /**
   * Gets the route secrets as JSON on its stdin (egress, git-gate), and so can be
   * started before the config is in place: it waits for its stdin.
   */
  secretsOnStdin?: boolean;
  /**
   * Only the secrets whose names start with one of these (egress: the
   * credential routes' and its proxy credential; a git identity or the
   * gate's token is none of its business).
   */
  secretPrefixes?: string[];
  /** URL answering 200 once the daemon serves. */
  health: string;
}

export const PIPELOCK_BIN = "/usr/local/bin/pipelock";

function pipelockSpec(name: string, config: string, port: number): DaemonSpec {
  return {
    name,
    argv: [
      PIPELOCK_BIN,
      "run",
      "--config",
      `${BUNDLE_CONFIG_DIR}/${config}`,
      "--listen",
      `127.0.0.1:${port}`,
    ],
    health: `http://127.0.0.1:${port}/health`,
  };
}

function routesPort(m: BundleManifest): number {
  return m.ports.pipelockRoutes ?? BUNDLE_PORTS.pipelockRoutes;
}

/** The secrets a daemon gets on its stdin, as JSON. */
export function secretsFor(spec: DaemonSpec, secrets: Record<string, string>): Uint8Array {
  const prefixes = spec.secretPrefixes;
  const mine = prefixes === undefined ? secrets : Object.fromEntries(
    Object.entries(secrets).filter(([k]) => prefixes.some((p) => k.startsWith(p))),
  );
  return new TextEncoder().encode(JSON.stringify(mine));
}

/** How to run this bundle script again: the Deno binary and the script's path. */
export interface SelfCommand {
  deno: string;
  script: string;
}

export function daemonSpecs(m: BundleManifest, self: SelfCommand): DaemonSpec[] {
  return m.daemons.map((name): DaemonSpec => {
    switch (name) {
      case "pipelock":
        return pipelockSpec(name, "pipelock.yaml", m.ports.pipelock);
      case "pipelock-routes":
        return pipelockSpec(name, PIPELOCK_ROUTES_CONFIG, routesPort(m));
      case "egress":
        return {
          name,
          secretsOnStdin: true,
          secretPrefixes: [ROUTE_SECRET_PREFIX, EGRESS_SECRET_PREFIX],
          // Least privilege: egress may write only its audit log and its socket.
          argv: [
            self.deno,
            "run",
            "--no-config",
            "--cached-only",
            ...egressPermissions({
              auditLog: AUDIT_LOG_IN_BUNDLE,
              socketsDir: SOCKETS_DIR,
              listenPort: m.ports.egress,
              // Both pipelocks (the routes' one exists where there are routes).
              upstreams: [`127.0.0.1:${m.ports.pipelock}`, `127.0.0.1:${routesPort(m)}`],
              readDirs: [BUNDLE_CONFIG_DIR],
            }),
            self.script,
            "egress",
            "--config",
            `${BUNDLE_CONFIG_DIR}/egress.json`,
            "--secrets-from-stdin",
          ],
          health: `http://127.0.0.1:${m.ports.egress}/healthz`,
        };
      case "git-gate":
        return {
          name,
          secretsOnStdin: true,
          // The upstreams' identities and its own token, and the routes' values to scan
          // pushes for (its secret scan refuses a push holding one); not egress's.
          secretPrefixes: [GATE_SECRET_PREFIX, ROUTE_SECRET_PREFIX],
          // It runs git, which is not confined by Deno's permissions anyway.
          argv: [
            self.deno,
            "run",
            "--no-config",
            "--cached-only",
            "--allow-all",
            "--no-prompt",
            self.script,
            "git-gate",
            "--config",
            `${BUNDLE_CONFIG_DIR}/${GATE_CONFIG_FILE}`,
            "--secrets-from-stdin",
          ],
          health: `http://127.0.0.1:${m.ports.gitGate}/healthz`,
        };
      case "supervise":
        return {
          name,
          secretsOnStdin: true,
          // Its token, where it has one; nothing else of the bottle's.
          secretPrefixes: [SUPERVISE_SECRET_PREFIX],
          argv: [
            self.deno,
            "run",
            "--no-config",
            "--cached-only",
            "--no-prompt",
            // The SDK aborts a call's signal when its client goes away, not when it is answered.
            "--unstable-no-legacy-abort",
            `--allow-read=${BUNDLE_CONFIG_DIR},${QUEUE_IN_BUNDLE},${SOCKETS_DIR}`,
            `--allow-write=${QUEUE_IN_BUNDLE},${AUDIT_LOG_IN_BUNDLE},${SOCKETS_DIR}/supervise.sock`,
            `--allow-net=127.0.0.1:${m.ports.supervise},0.0.0.0:${m.ports.supervise},unix:${SOCKETS_DIR}/supervise.sock`,
            self.script,
            "supervise",
            "--config",
            `${BUNDLE_CONFIG_DIR}/${SUPERVISE_CONFIG_FILE}`,
            "--secrets-from-stdin",
          ],
          health: `http://127.0.0.1:${m.ports.supervise}/healthz`,
        };
      default:
        throw new Error(`Daemon "${name}" is not part of this bundle version`);
    }
  });
}
