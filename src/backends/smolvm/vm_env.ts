/**
 * The VM's environment: the plan's agent env with the bundle's alias
 * replaced by its address, since the VM has no DNS (closed on purpose) and
 * its egress policy allows that one address only.
 */
import type { Plan } from "../../plan/plan_types.ts";

export function vmEnv(plan: Plan, bundleAddress: string): Record<string, string> {
  const alias = plan.bundle.alias;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(plan.agent.env)) {
    if (/^(https?_proxy|HTTPS?_PROXY)$/.test(k)) {
      out[k] = v.replace(`//${alias}:`, `//${bundleAddress}:`);
    } else if (/^no_proxy$/i.test(k)) {
      out[k] = v.split(",").map((h) => (h === alias ? bundleAddress : h)).join(",");
    } else {
      out[k] = v;
    }
  }
  return out;
}

/** Runs argv as the agent user (uid 1000 in bottle's agent image): guest exec runs as root. */
export function asAgent(argv: string[]): string[] {
  return ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "--", ...argv];
}
