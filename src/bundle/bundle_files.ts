/**
 * Host side of the bundle: writes everything a bottle's bundle reads at
 * start into its state dir (mounted read-only at /etc/bottle): the manifest
 * for init, egress's and pipelock's configs, and the two per-bottle CAs
 * minted in-process. No secret value is written: routes name the env var of
 * the egress process that holds each one.
 */
import { join } from "node:path";
import type { Plan } from "../plan/plan_types.ts";
import { mintCa } from "../tls/ca.ts";
import { makePrivateDir, writePrivateFile } from "../state/private_files.ts";
import type { BundleManifest } from "./init/bundle_manifest.ts";
import { AUDIT_LOG_IN_BUNDLE, BUNDLE_CONFIG_DIR } from "./init/bundle_manifest.ts";
import type { EgressConfig } from "./egress/config.ts";
import { pipelockConfig } from "./pipelock/pipelock_config.ts";

/** RFC 2606 reserves `.invalid`: allowlisting only this allows nothing. */
export const DENY_ALL_HOST = "nothing-allowed.invalid";
/** Upstream CAs the bundle trusts besides the system roots, a `:`-separated list of files. */
export const UPSTREAM_CA_ENV = "BOTTLE_UPSTREAM_CA_CERTS";

export interface BundleFiles {
  /** Host dir mounted at /etc/bottle. */
  configDir: string;
  /** Host dir mounted at /var/log/bottle (audit log). */
  logDir: string;
  /** PEM of every CA the agent must trust (egress's and pipelock's). */
  agentTrustPem: string;
  agentTrustFile: string;
}

export async function writeBundleFiles(
  plan: Plan,
  opts: { upstreamCaFiles: string[] },
): Promise<BundleFiles> {
  const configDir = join(plan.bottle.stateDir, "bundle");
  const logDir = join(plan.bottle.stateDir, "logs");
  await makePrivateDir(configDir);
  await makePrivateDir(logDir);
  // The bundle runs as the invoking user, so 0700/0600 still let it read these.

  const egressCa = await mintCa({ commonName: `bottle egress CA (${plan.bottle.name})` });
  const pipelockCa = await mintCa({ commonName: `bottle pipelock CA (${plan.bottle.name})` });
  const f = (name: string) => join(configDir, name);
  const inBundle = (name: string) => `${BUNDLE_CONFIG_DIR}/${name}`;
  await writePrivateFile(f("egress-ca.pem"), egressCa.certPem);
  await writePrivateFile(f("egress-ca-key.pem"), egressCa.keyPem);
  await writePrivateFile(f("pipelock-ca.pem"), pipelockCa.certPem);
  await writePrivateFile(f("pipelock-ca-key.pem"), pipelockCa.sec1KeyPem);

  const upstreamNames: string[] = [];
  for (const [i, file] of opts.upstreamCaFiles.entries()) {
    const name = `upstream-ca-${i}.pem`;
    await writePrivateFile(f(name), await Deno.readTextFile(file));
    upstreamNames.push(name);
  }

  const manifest: BundleManifest = {
    bottle: plan.bottle.name,
    daemons: plan.bundle.daemons,
    ports: plan.bundle.ports,
  };
  await writePrivateFile(f("bundle.json"), JSON.stringify(manifest, null, 2) + "\n");

  const egress: EgressConfig = {
    bottle: plan.bottle.name,
    listen: { host: "0.0.0.0", port: plan.bundle.ports.egress },
    upstreamProxy: `http://127.0.0.1:${plan.bundle.ports.pipelock}`,
    auditLog: AUDIT_LOG_IN_BUNDLE,
    caCertFile: inBundle("egress-ca.pem"),
    caKeyFile: inBundle("egress-ca-key.pem"),
    upstreamCaFiles: [inBundle("pipelock-ca.pem"), ...upstreamNames.map(inBundle)],
    routes: plan.bundle.routes.map((r) => ({
      host: r.host,
      header: r.header,
      template: r.template,
      valueEnv: r.valueEnv,
    })),
  };
  await writePrivateFile(f("egress.json"), JSON.stringify(egress, null, 2) + "\n");

  await writePrivateFile(
    f("pipelock.yaml"),
    pipelockConfig({
      // pipelock's strict mode refuses an empty allowlist; an agent allowed
      // nowhere gets one reserved name that never resolves instead.
      allowlist: plan.bundle.allowlist.length > 0 ? plan.bundle.allowlist : [DENY_ALL_HOST],
      listen: `127.0.0.1:${plan.bundle.ports.pipelock}`,
      caCertPath: inBundle("pipelock-ca.pem"),
      caKeyPath: inBundle("pipelock-ca-key.pem"),
      injectedHeaders: [...new Set(plan.bundle.routes.map((r) => r.header))],
    }),
  );

  const agentTrustPem = `${egressCa.certPem.trim()}\n${pipelockCa.certPem.trim()}\n`;
  const agentTrustFile = join(plan.bottle.stateDir, "agent-trust.pem");
  await writePrivateFile(agentTrustFile, agentTrustPem);
  return { configDir, logDir, agentTrustPem, agentTrustFile };
}
