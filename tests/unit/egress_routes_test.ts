import assert from "node:assert/strict";
import {
  isRoutedName,
  matchRoute,
  parseRouteHost,
  routeHostProblem,
} from "../../src/bundle/egress/routes.ts";
import { hostPatternProblem } from "../../src/bundle/pipelock/pipelock_config.ts";

Deno.test("a route matches its exact host, case- and dot-insensitively, on its port only", () => {
  const routes = [{ host: "api.anthropic.com", id: 1 }, { host: "api.example.com:8443", id: 2 }];
  assert.equal(matchRoute(routes, "api.anthropic.com", 443)?.id, 1);
  assert.equal(matchRoute(routes, "API.Anthropic.com.", 443)?.id, 1);
  assert.equal(matchRoute(routes, "api.anthropic.com", 8443), undefined);
  assert.equal(matchRoute(routes, "x.api.anthropic.com", 443), undefined);
  assert.equal(matchRoute(routes, "api.anthropic.com.evil.net", 443), undefined);
  assert.equal(matchRoute(routes, "api.example.com", 8443)?.id, 2);
  assert.equal(matchRoute(routes, "api.example.com", 443), undefined);
  assert.ok(isRoutedName(routes, "api.example.com"));
  assert.ok(!isRoutedName(routes, "example.com"));
  assert.deepEqual(parseRouteHost("Api.Example.com:8443"), { name: "api.example.com", port: 8443 });
  assert.deepEqual(parseRouteHost("api.github.com"), { name: "api.github.com", port: 443 });
});

Deno.test("route hosts: wildcards are refused, ports checked", () => {
  assert.equal(routeHostProblem("api.anthropic.com"), undefined);
  assert.equal(routeHostProblem("api.example.com:8443"), undefined);
  assert.match(routeHostProblem("*.example.com") ?? "", /wildcard routes are refused/);
  assert.match(routeHostProblem("a.*.com") ?? "", /wildcard/);
  assert.match(routeHostProblem("bad host") ?? "", /not a DNS host name/);
  assert.match(routeHostProblem("h.com:0") ?? "", /port/);
  assert.match(routeHostProblem("h.com:99999") ?? "", /port/);
});

Deno.test("allowlist patterns: exact hosts and leading wildcards", () => {
  assert.equal(hostPatternProblem("api.anthropic.com"), undefined);
  assert.equal(hostPatternProblem("*.example.com"), undefined);
  assert.match(hostPatternProblem("a.*.com") ?? "", /wildcard/);
  assert.match(hostPatternProblem("*.com") ?? "", /two labels/);
  assert.match(hostPatternProblem("bad host") ?? "", /not a DNS host name/);
});
