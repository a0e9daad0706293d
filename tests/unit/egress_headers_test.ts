import assert from "node:assert/strict";
import {
  credentialValue,
  rewriteRoutedHeaders,
  stripProxyHeaders,
} from "../../src/bundle/egress/headers.ts";

const ROUTE = { header: "x-api-key", template: "{value}" };

Deno.test("routed requests lose every credential the agent sent", () => {
  const out = rewriteRoutedHeaders(
    [
      ["Host", "api.example.com"],
      ["Authorization", "Bearer agent"],
      ["Proxy-Authorization", "Basic x"],
      ["X-Api-Key", "placeholder"],
      ["x-api-key", "second"],
      ["Accept", "*/*"],
    ],
    ROUTE,
    "real-secret",
  );
  assert.deepEqual(out, [["Host", "api.example.com"], ["Accept", "*/*"], [
    "x-api-key",
    "real-secret",
  ]]);
});

Deno.test("the route's own header is dropped even when it is not a usual credential header", () => {
  const out = rewriteRoutedHeaders(
    [["X-Goog-Api-Key", "placeholder"]],
    { header: "x-goog-api-key", template: "{value}" },
    "s3cret",
  );
  assert.deepEqual(out, [["x-goog-api-key", "s3cret"]]);
});

Deno.test("the template wraps the secret, and $ in a secret stays literal", () => {
  assert.equal(credentialValue("Bearer {value}", "abc"), "Bearer abc");
  assert.equal(credentialValue("{value}", "a$&b$1"), "a$&b$1");
});

Deno.test("Connection keeps only end-to-end tokens so the credential cannot be made hop-by-hop", () => {
  const out = rewriteRoutedHeaders(
    [["Connection", "keep-alive, x-api-key, Upgrade"], ["Keep-Alive", "timeout=5"], [
      "Proxy-Connection",
      "keep-alive",
    ]],
    ROUTE,
    "s3cret",
  );
  assert.deepEqual(out, [["Connection", "keep-alive, Upgrade"], ["x-api-key", "s3cret"]]);
});

Deno.test("plain forwarding strips only what was addressed to the proxy", () => {
  assert.deepEqual(
    stripProxyHeaders([["Proxy-Connection", "x"], ["Proxy-Authorization", "y"], [
      "Authorization",
      "z",
    ]]),
    [["Authorization", "z"]],
  );
});

Deno.test("every route's header is dropped on every routed request: none goes on unscanned", () => {
  // Route A injects X-Token, route B Authorization; the routes' pipelock exempts both names.
  const out = rewriteRoutedHeaders(
    [["Host", "b.example.com"], ["X-Token", "data the agent wants out"], ["Accept", "*/*"]],
    { header: "authorization", template: "Bearer {value}" },
    "b-secret",
    ["X-Token", "authorization"],
  );
  assert.deepEqual(out, [["Host", "b.example.com"], ["Accept", "*/*"], [
    "authorization",
    "Bearer b-secret",
  ]]);
});
