/**
 * The credential swap on a routed request. Whatever auth the agent sent
 * (a placeholder, or a key it should not have) is dropped, and the route's
 * header is set from the real secret. `Connection` is reduced to the tokens
 * that matter end to end, so no agent-chosen token can mark the injected
 * header as hop-by-hop and have a later hop (pipelock intercepting TLS) strip it.
 */
import type { Headers1 } from "./http1.ts";

/** Headers that carry credentials, dropped from every routed request. */
export const CREDENTIAL_HEADERS: readonly string[] = [
  "authorization",
  "proxy-authorization",
  "x-api-key",
];

/** Addressed to a proxy or hop-by-hop: never forwarded on a routed request. */
const HOP_HEADERS = new Set(["proxy-connection", "keep-alive", "proxy-authenticate"]);
const CONNECTION_TOKENS_KEPT = new Set(["close", "keep-alive", "upgrade"]);

export interface CredentialRoute {
  header: string;
  template: string;
}

/** The header value for `secret`; split/join, not replace(), so `$` in a secret stays literal. */
export function credentialValue(template: string, secret: string): string {
  return template.split("{value}").join(secret);
}

/**
 * `headers` with the agent's credentials removed and the route's credential
 * set. `injected` names every route's header: the routes' pipelock leaves
 * all of them unscanned, so none may carry what the agent wrote, to any
 * routed host.
 */
export function rewriteRoutedHeaders(
  headers: Headers1,
  route: CredentialRoute,
  secret: string,
  injected: readonly string[] = [],
): Headers1 {
  const drop = new Set([
    ...CREDENTIAL_HEADERS,
    route.header.toLowerCase(),
    ...injected.map((h) => h.toLowerCase()),
  ]);
  const out: Headers1 = [];
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (drop.has(lower) || HOP_HEADERS.has(lower)) continue;
    if (lower === "connection") {
      const kept = value.split(",").map((t) => t.trim())
        .filter((t) => CONNECTION_TOKENS_KEPT.has(t.toLowerCase()));
      if (kept.length > 0) out.push([name, kept.join(", ")]);
      continue;
    }
    out.push([name, value]);
  }
  out.push([route.header, credentialValue(route.template, secret)]);
  return out;
}

/** `headers` less what a client addresses to its proxy, for plain forwarding. */
export function stripProxyHeaders(headers: Headers1): Headers1 {
  return headers.filter(([n]) => {
    const lower = n.toLowerCase();
    return lower !== "proxy-connection" && lower !== "proxy-authorization";
  });
}
