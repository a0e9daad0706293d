/**
 * Resolves the value of every credential route of a plan, keyed by the env
 * var of the egress daemon that will carry it. Called at launch only.
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
  return out;
}
