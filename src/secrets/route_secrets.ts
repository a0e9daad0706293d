/**
 * Resolves the value of every secret a plan's bundle holds (credential
 * routes, git upstream identities), keyed by the env var of the daemon that
 * will carry it. Called at launch only.
 */
import type { Plan } from "../plan/plan_types.ts";
import { resolveSecret } from "./resolve_secret.ts";

export async function resolveRouteSecrets(
  plan: Plan,
  env: Record<string, string | undefined>,
  baseDir: string,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const r of plan.bundle.routes) {
    out[r.valueEnv] = await resolveSecret(r.source, { env, baseDir, what: `route "${r.host}"` });
  }
  for (const u of plan.bundle.gitGate?.upstreams ?? []) {
    if (u.kind !== "remote" || !u.identity) continue;
    out[u.identity.valueEnv] = await resolveSecret(u.identity.source, {
      env,
      baseDir,
      what: `git upstream ${u.remoteUrl}`,
    });
  }
  return out;
}
