/**
 * The proxy credential: egress serves a request to the outside only when it
 * carries `Proxy-Authorization: Basic` with the bottle's token as password
 * (the user name is not checked: the agent's proxy URLs say `bottle`). It is
 * what tells the agent apart from any other process that can reach the
 * port. Compared in constant time; the header never goes further (CONNECT
 * heads stop here, plain forwards strip it).
 */
import { timingSafeEqual } from "node:crypto";
import type { Headers1 } from "./http1.ts";

export const PROXY_REALM = "bottle";

/** True when `headers` hold exactly one Basic credential whose password is `token`. */
export function hasProxyCredential(headers: Headers1, token: string): boolean {
  const values = headers.filter(([n]) => n.toLowerCase() === "proxy-authorization");
  if (values.length !== 1) return false;
  const m = /^basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(values[0]![1]);
  if (!m) return false;
  let decoded: Uint8Array;
  try {
    decoded = Uint8Array.from(atob(m[1]!), (c) => c.charCodeAt(0));
  } catch {
    return false;
  }
  const colon = decoded.indexOf(0x3a);
  if (colon < 0) return false;
  const given = decoded.subarray(colon + 1);
  const want = new TextEncoder().encode(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** The challenge a 407 carries, so clients that wait for one (curl's anyauth) answer it. */
export const PROXY_CHALLENGE: [string, string] = [
  "Proxy-Authenticate",
  `Basic realm="${PROXY_REALM}"`,
];
