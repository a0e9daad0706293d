/**
 * What the bundle init reads at start (`/etc/bottle/bundle.json`): which
 * daemons to run and on which ports. Written by the host from the plan, so
 * the bundle image itself carries no per-bottle state.
 */
import { z } from "zod";

export const BUNDLE_CONFIG_DIR = "/etc/bottle";
export const BUNDLE_MANIFEST = `${BUNDLE_CONFIG_DIR}/bundle.json`;
/** The audit log inside the bundle (`<state>/logs` on the host). */
export const BUNDLE_LOG_DIR = "/var/log/bottle";
export const AUDIT_LOG = "audit.jsonl";
export const AUDIT_LOG_IN_BUNDLE = `${BUNDLE_LOG_DIR}/${AUDIT_LOG}`;
/** Printed once every selected daemon answers its health check. */
export const READY_LINE = "bottle-bundle: ready";

export const bundleManifest = z.strictObject({
  bottle: z.string(),
  daemons: z.array(z.enum(["egress", "pipelock", "git-gate", "supervise"])).min(1),
  ports: z.strictObject({
    egress: z.number().int(),
    pipelock: z.number().int(),
    health: z.number().int(),
    gitGate: z.number().int().optional(),
    supervise: z.number().int().optional(),
  }),
});

export type BundleManifest = z.infer<typeof bundleManifest>;
