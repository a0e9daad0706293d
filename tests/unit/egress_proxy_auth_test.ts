import assert from "node:assert/strict";
import { hasProxyCredential } from "../../src/bundle/egress/proxy_auth.ts";

const TOKEN = "0123456789abcdef0123456789abcdef";
const basic = (s: string) => `Basic ${btoa(s)}`;

Deno.test("proxy credential: Basic with the token as password, any user name", () => {
  assert.ok(hasProxyCredential([["Proxy-Authorization", basic(`bottle:${TOKEN}`)]], TOKEN));
  assert.ok(hasProxyCredential([["proxy-authorization", basic(`someone:${TOKEN}`)]], TOKEN));
  assert.ok(hasProxyCredential([["Proxy-Authorization", `basic   ${btoa(`:${TOKEN}`)}`]], TOKEN));
});

Deno.test("proxy credential: anything else is none", () => {
  const cases: [string, string][][] = [
    [],
    [["Proxy-Authorization", basic(`bottle:${TOKEN}x`)]],
    [["Proxy-Authorization", basic(`bottle:${TOKEN.slice(1)}`)]],
    [["Proxy-Authorization", basic(TOKEN)]], // no colon: a user name alone
    [["Proxy-Authorization", `Bearer ${TOKEN}`]],
    [["Proxy-Authorization", `Basic ${TOKEN}`]], // not base64 of user:pass
    [["Proxy-Authorization", "Basic !!!"]],
    [["Authorization", basic(`bottle:${TOKEN}`)]], // the origin's header, not the proxy's
    // Two credentials: ambiguous, refused even if one is right.
    [["Proxy-Authorization", basic(`bottle:${TOKEN}`)], ["Proxy-Authorization", basic("a:b")]],
  ];
  for (const headers of cases) {
    assert.equal(hasProxyCredential(headers, TOKEN), false, JSON.stringify(headers));
  }
});
