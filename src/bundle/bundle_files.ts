/**
 * Host side of the bundle: makes, in memory, everything the bundle reads at
 * start: the manifest for init, egress's and pipelock's configs, the two
 * per-bottle CAs minted in-process, and the extra upstream CAs. They are
 * sent on the bundle's stdin when it starts (plan:
 * `bundle.container.startInput`), never written to the host's disk, so CA
 * keys live only in the bundle and the engine need not share this host's
 * filesystem. No secret value is in them: routes name the env var of the
 * egress process that holds each one.
 */
import type { Plan } from "../plan/plan_types.ts";

import type { BundleManifest } from "./init/bundle_manifest.ts";
import {
  AUDIT_LOG_IN_BUNDLE,
  BUNDLE_CONFIG_DIR,
  PIPELOCK_ROUTES_CONFIG,
} from "./init/bundle_manifest.ts";
import { parseRouteHost } from "./egress/routes.ts";
import type { EgressConfig } from "./egress/config.ts";
import { pipelockConfig } from "./pipelock/pipelock_config.ts";
import type { GateConfig, GateUpstream, HostUpstream } from "./git_gate/gate_config.ts";
import { UserError } from "../errors.ts";
import { GATE_CONFIG_FILE, SOCKETS_DIR } from "./init/bundle_manifest.ts";
import { SUPERVISE_CONFIG_FILE, type SuperviseConfig } from "./supervise/supervise_config.ts";
import { QUEUE_IN_BUNDLE } from "./supervise/queue_files.ts";

/** RFC 2606 reserves `.invalid`: allowlisting only this allows nothing. */
export const DENY_ALL_HOST = "nothing-allowed.invalid";

export interface BundleFiles {
  /** File name (in the bundle's config dir) -> contents. */
  files: Map<string, string>;
  /** PEM of every CA the agent must trust (egress's and pipelock's). */
  agentTrustPem: string;
}

/** Where each gate upstream starts, found at launch (the starting commit is made then). */
export type GateStarts = Record<string, HostUpstream["start"]>;

/** An ssh upstream's server keys come from the user's known_hosts: no key, no connection. */
async function readKnownHosts(file: string, url: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch {
    throw new UserError(
      `git upstream ${url}: no known_hosts file at ${file}: connect to the server once with ssh from this host, or set known_hosts: in the agent file`,
    );
  }
}

/** Where the gate keeps its mirrors and hooks in the bundle. */
export const GATE_MIRRORS_DIR = "/var/lib/bottle/git";

export async function makeBundleFiles(
  plan: Plan,
  gateStarts: GateStarts = {},
): Promise<BundleFiles> {
  // Loaded here, not at the top: the X.509 library is the heaviest module a
  // launch loads, and only this step needs it.
  const { mintCa } = await import("../tls/ca.ts");
  const [egressCa, pipelockCa] = await Promise.all([
    mintCa({ commonName: `bottle egress CA (${plan.bottle.name})` }),
    mintCa({ commonName: `bottle pipelock CA (${plan.bottle.name})` }),
  ]);
  const files = new Map<string, string>();
  const inBundle = (name: string) => `${BUNDLE_CONFIG_DIR}/${name}`;
  files.set("egress-ca.pem", egressCa.certPem);
  files.set("egress-ca-key.pem", egressCa.keyPem);
  files.set("pipelock-ca.pem", pipelockCa.certPem);
  files.set("pipelock-ca-key.pem", pipelockCa.sec1KeyPem);

  const upstreamNames: string[] = [];
  for (const [i, file] of plan.bundle.upstreamCaFiles.entries()) {
    const name = `upstream-ca-${i}.pem`;
    files.set(name, await Deno.readTextFile(file));
    upstreamNames.push(name);
  }

  const manifest: BundleManifest = {
    bottle: plan.bottle.name,
    daemons: plan.bundle.daemons,
    ports: plan.bundle.ports,
  };
  files.set("bundle.json", JSON.stringify(manifest, null, 2) + "\n");

  const egress: EgressConfig = {
    bottle: plan.bottle.name,
    listen: plan.bundle.listen,
    upstreamProxy: `http://127.0.0.1:${plan.bundle.ports.pipelock}`,
    ...(plan.bundle.ports.pipelockRoutes
      ? { routesProxy: `http://127.0.0.1:${plan.bundle.ports.pipelockRoutes}` }
      : {}),
    auditLog: AUDIT_LOG_IN_BUNDLE,
    caCertFile: inBundle("egress-ca.pem"),
    caKeyFile: inBundle("egress-ca-key.pem"),
    upstreamCaFiles: [inBundle("pipelock-ca.pem"), ...upstreamNames.map(inBundle)],
    proxyAuth: { tokenEnv: plan.bundle.proxyAuth.tokenEnv },
    // The same list pipelock gets (an agent allowed nowhere: nothing).
    allowlist: plan.bundle.allowlist,
    routes: plan.bundle.routes.map((r) => ({
      host: r.host,
      header: r.header,
      template: r.template,
      valueEnv: r.valueEnv,
    })),
  };
  files.set("egress.json", JSON.stringify(egress, null, 2) + "\n");

  // Every host but the routes: every header scanned, the agent's own
  // Authorization included. pipelock's header exemptions hold for every
  // destination, so the routes' one pipelock has them, and only routed
  // connections (whose credential headers egress itself sets) go there.
  files.set(
    "pipelock.yaml",
    pipelockConfig({
      // pipelock's strict mode refuses an empty allowlist; an agent allowed
      // nowhere gets one reserved name that never resolves instead.
      allowlist: plan.bundle.allowlist.length > 0 ? plan.bundle.allowlist : [DENY_ALL_HOST],
      listen: `127.0.0.1:${plan.bundle.ports.pipelock}`,
      caCertPath: inBundle("pipelock-ca.pem"),
      caKeyPath: inBundle("pipelock-ca-key.pem"),
      injectedHeaders: [],
    }),
  );
  if (plan.bundle.ports.pipelockRoutes) {
    files.set(
      PIPELOCK_ROUTES_CONFIG,
      pipelockConfig({
        allowlist: [...new Set(plan.bundle.routes.map((r) => parseRouteHost(r.host).name))],
        listen: `127.0.0.1:${plan.bundle.ports.pipelockRoutes}`,
        caCertPath: inBundle("pipelock-ca.pem"),
        caKeyPath: inBundle("pipelock-ca-key.pem"),
        injectedHeaders: [...new Set(plan.bundle.routes.map((r) => r.header))],
      }),
    );
  }

  const gate = plan.bundle.gitGate;
  if (gate) {
    const config: GateConfig = {
      bottle: plan.bottle.name,
      // Where egress listens: loopback and the socket, or (smolmachines) the bundle's address.
      listen: plan.bundle.listen.socket
        ? {
          host: "127.0.0.1",
          port: plan.bundle.ports.gitGate!,
          socket: `${SOCKETS_DIR}/git-gate.sock`,
        }
        : { host: plan.bundle.listen.host, port: plan.bundle.ports.gitGate! },
      ...(gate.auth ? { tokenEnv: gate.auth.tokenEnv } : {}),
      auditLog: AUDIT_LOG_IN_BUNDLE,
      mirrorsDir: GATE_MIRRORS_DIR,
      upstreamCaFiles: upstreamNames.map(inBundle),
      upstreams: await Promise.all(
        gate.upstreams.map(async (u): Promise<GateUpstream> =>
          u.kind === "host"
            ? {
              name: u.name,
              kind: u.kind,
              bundlePath: u.bundlePath,
              landingPrefix: u.landingPrefix,
              start: gateStarts[u.name] ?? { carried: false },
              policy: u.policy,
              ...(u.transport === "copy" ? { copied: true } : {}),
              ...(u.landingStore ? { objectStore: u.landingStore.dir } : {}),
            }
            : {
              name: u.name,
              kind: u.kind,
              url: u.remoteUrl,
              ...(u.identity
                ? { identity: { kind: u.identity.kind, env: u.identity.valueEnv } }
                : {}),
              ...(u.knownHostsFile
                ? { knownHosts: await readKnownHosts(u.knownHostsFile, u.remoteUrl) }
                : {}),
              policy: u.policy,
            }
        ),
      ),
      // The bottle's own secrets (routes', git identities'), which no push may carry.
      secretEnv: (plan.bundle.container.startInput?.secrets ?? []).filter((e) =>
        e !== gate.auth?.tokenEnv
      ),
    };
    files.set(GATE_CONFIG_FILE, JSON.stringify(config, null, 2) + "\n");
  }

  const supervise = plan.bundle.supervise;
  if (supervise) {
    const config: SuperviseConfig = {
      bottle: plan.bottle.name,
      queueDir: QUEUE_IN_BUNDLE,
      auditLog: AUDIT_LOG_IN_BUNDLE,
      listen: plan.bundle.listen.socket
        ? {
          host: "127.0.0.1",
          port: plan.bundle.ports.supervise!,
          socket: `${SOCKETS_DIR}/supervise.sock`,
        }
        : { host: plan.bundle.listen.host, port: plan.bundle.ports.supervise! },
      timeoutSeconds: supervise.timeoutSeconds,
      ...(supervise.auth ? { tokenEnv: supervise.auth.tokenEnv } : {}),
    };
    files.set(SUPERVISE_CONFIG_FILE, JSON.stringify(config, null, 2) + "\n");
  }

  // Exactly the files the plan says are copied in, no more, no fewer.
  const planned = (plan.bundle.container.startInput?.files ?? []).map((f) => f.name).sort();
  const made = [...files.keys()].sort();
  if (planned.join() !== made.join()) {
    throw new Error(`Bundle files ${made.join(", ")} differ from the plan's ${planned.join(", ")}`);
  }
  const agentTrustPem = `${egressCa.certPem.trim()}\n${pipelockCa.certPem.trim()}\n`;
  return { files, agentTrustPem };
}
