/**
 * Which hosts get a credential. A route names one exact host or a
 * `*.suffix` wildcard (any depth of subdomain, never the bare suffix), the
 * same pattern shape as pipelock's allowlist, so one list can feed both.
 */
import { normalizeHost } from "../../tls/pem.ts";

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Why `pattern` is not a valid route host, or undefined when it is. */
export function hostPatternProblem(pattern: string): string | undefined {
  const p = pattern.toLowerCase();
  const name = p.startsWith("*.") ? p.slice(2) : p;
  if (name.includes("*")) return 'a wildcard may only be a leading "*."';
  const labels = name.split(".");
  if (p.startsWith("*.") && labels.length < 2) {
    return 'a wildcard needs at least two labels after "*." ("*.example.com")';
  }
  if (name.length > 253 || !labels.every((l) => LABEL.test(l))) {
    return "not a DNS host name";
  }
  return undefined;
}

/** True when `host` (a CONNECT or Host authority's host part) matches `pattern`. */
export function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  const h = normalizeHost(host);
  if (p.startsWith("*.")) return h.endsWith(p.slice(1)) && h.length > p.length - 1;
  return h === p;
}

/** The route for `host`: an exact match wins, then the longest wildcard. */
export function matchRoute<T extends { host: string }>(
  routes: readonly T[],
  host: string,
): T | undefined {
  let best: T | undefined;
  for (const r of routes) {
    if (!hostMatches(r.host, host)) continue;
    if (!r.host.startsWith("*.")) return r;
    if (!best || r.host.length > best.host.length) best = r;
  }
  return best;
}
