import assert from "node:assert/strict";
import { hostMatches, hostPatternProblem, matchRoute } from "../../src/bundle/egress/routes.ts";

Deno.test("an exact route matches its host only, case and trailing dot aside", () => {
  assert.ok(hostMatches("api.anthropic.com", "api.anthropic.com"));
  assert.ok(hostMatches("api.anthropic.com", "API.Anthropic.com."));
  assert.ok(!hostMatches("api.anthropic.com", "x.api.anthropic.com"));
  assert.ok(!hostMatches("api.anthropic.com", "api.anthropic.com.evil.net"));
});

Deno.test("a wildcard route matches subdomains at any depth but not the bare suffix", () => {
  assert.ok(hostMatches("*.example.com", "a.example.com"));
  assert.ok(hostMatches("*.example.com", "a.b.example.com"));
  assert.ok(!hostMatches("*.example.com", "example.com"));
  assert.ok(!hostMatches("*.example.com", "badexample.com"));
});

Deno.test("matchRoute prefers an exact route, then the longest wildcard", () => {
  const routes = [
    { host: "*.example.com", id: 1 },
    { host: "*.api.example.com", id: 2 },
    { host: "v1.api.example.com", id: 3 },
  ];
  assert.equal(matchRoute(routes, "v1.api.example.com")?.id, 3);
  assert.equal(matchRoute(routes, "v2.api.example.com")?.id, 2);
  assert.equal(matchRoute(routes, "www.example.com")?.id, 1);
  assert.equal(matchRoute(routes, "example.org"), undefined);
});

Deno.test("route host patterns are validated", () => {
  assert.equal(hostPatternProblem("api.anthropic.com"), undefined);
  assert.equal(hostPatternProblem("*.example.com"), undefined);
  assert.match(hostPatternProblem("a.*.com") ?? "", /wildcard/);
  assert.match(hostPatternProblem("*.com") ?? "", /two labels/);
  assert.match(hostPatternProblem("bad host") ?? "", /not a DNS host name/);
});
