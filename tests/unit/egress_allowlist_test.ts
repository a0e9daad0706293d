import assert from "node:assert/strict";
import { hostAllowed, refusalDecision } from "../../src/bundle/egress/allowlist.ts";

Deno.test("egress allowlist: matches as pipelock does", () => {
  const list = ["api.anthropic.com", "*.example.com", "10.0.0.1"];
  for (
    const h of [
      "api.anthropic.com",
      "API.Anthropic.com.",
      "example.com",
      "a.example.com",
      "a.b.example.com",
      "10.0.0.1",
    ]
  ) {
    assert.ok(hostAllowed(list, h), h);
  }
  for (
    const h of [
      "anthropic.com",
      "evil-api.anthropic.com",
      "example.com.evil",
      "badexample.com",
      "10.0.0.10",
      "1.10.0.0.1",
    ]
  ) {
    assert.ok(!hostAllowed(list, h), h);
  }
  // A wildcard never stretches over an address.
  assert.ok(!hostAllowed(["*.0.0.1"], "10.0.0.1"));
  assert.ok(!hostAllowed([], "api.anthropic.com"));
});

Deno.test("egress allowlist: pipelock's 4xx is policy, its 5xx the upstream failing", () => {
  assert.equal(refusalDecision(403), "denied");
  assert.equal(refusalDecision(407), "denied");
  assert.equal(refusalDecision(502), "error");
  assert.equal(refusalDecision(504), "error");
});
