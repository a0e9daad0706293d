/**
 * The bottle's allowlist as egress knows it, so its audit log can say
 * "denied: not in the allowlist" itself rather than relay pipelock's 403
 * as if it were any other answer. pipelock still enforces the same list
 * behind it; egress matches the way pipelock does (`MatchDomain`):
 * `*.example.com` covers `example.com` and every name under it, an IP
 * address only itself.
 */
import { normalizeHost } from "../../tls/pem.ts";

export function hostAllowed(patterns: readonly string[], host: string): boolean {
  const h = normalizeHost(host).replace(/\.$/, "");
  const isIp = /^[0-9.]+$/.test(h) || h.includes(":");
  return patterns.some((raw) => {
    const p = raw.toLowerCase().replace(/\.$/, "");
    if (isIp || !p.startsWith("*.")) return h === p;
    return h === p.slice(2) || h.endsWith(p.slice(1));
  });
}

/** A refusal from pipelock: a 4xx is its policy (allowlist, DLP); a 5xx, the upstream failing. */
export function refusalDecision(status: number): "denied" | "error" {
  return status >= 500 ? "error" : "denied";
}
