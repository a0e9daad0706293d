/**
 * Which requests get a credential. A route names one exact host and port
 * (`api.github.com` means port 443; `api.example.com:8443` names another).
 * There are no wildcard routes: `*.example.com` would inject the credential
 * into every subdomain, including ones anyone can register on a shared
 * platform (a `*.github.io` page, a tenant of a SaaS host), which would then
 * receive it from the agent's first request there.
 */
import { normalizeHost } from "../../tls/pem.ts";

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Headers that frame or route a message: a credential there would break or redirect it. */
export const FRAMING_HEADERS: ReadonlySet<string> = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "upgrade",
  "te",
  "trailer",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
]);
export const DEFAULT_ROUTE_PORT = 443;

/** Why `host` is not a valid route host, or undefined when it is. */
export function routeHostProblem(host: string): string | undefined {
  const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(host.toLowerCase());
  if (!m) return 'expected "name" or "name:port"';
  const [, name, port] = m as unknown as [string, string, string | undefined];
  if (name.includes("*")) {
    return "wildcard routes are refused: the credential would go to every subdomain, " +
      "including ones anyone can register on shared platforms; list each host";
  }
  const labels = name.split(".");
  if (name.length > 253 || !labels.every((l) => LABEL.test(l))) return "not a DNS host name";
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return "port out of range";
  return undefined;
}

/** A route host's name and port (443 unless it names one). */
export function parseRouteHost(host: string): { name: string; port: number } {
  const i = host.lastIndexOf(":");
  return i > 0
    ? { name: host.slice(0, i).toLowerCase(), port: Number(host.slice(i + 1)) }
    : { name: host.toLowerCase(), port: DEFAULT_ROUTE_PORT };
}

/** The route for a request to `host:port` (a CONNECT target or a Host authority). */
export function matchRoute<T extends { host: string }>(
  routes: readonly T[],
  host: string,
  port: number,
): T | undefined {
  const h = normalizeHost(host);
  return routes.find((r) => {
    const p = parseRouteHost(r.host);
    return p.name === h && p.port === port;
  });
}

/** Whether any route names this host, on any port (plain http to it is refused). */
export function isRoutedName<T extends { host: string }>(routes: readonly T[], host: string) {
  const h = normalizeHost(host);
  return routes.some((r) => parseRouteHost(r.host).name === h);
}
