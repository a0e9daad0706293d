import assert from "node:assert/strict";
import {
  parseEgressConfig,
  resolveProxyToken,
  resolveRoutes,
} from "../../src/bundle/egress/config.ts";
import { clearSecrets, redact } from "../../src/proc/secrets.ts";

function valid(): Record<string, unknown> {
  return {
    bottle: "b1",
    listen: { host: "0.0.0.0", port: 3128 },
    upstreamProxy: "http://127.0.0.1:8888",
    auditLog: "/state/audit.jsonl",
    caCertFile: "/ca/egress.pem",
    caKeyFile: "/ca/egress-key.pem",
    upstreamCaFiles: ["/ca/pipelock.pem"],
    routes: [{
      host: "api.anthropic.com",
      header: "x-api-key",
      template: "{value}",
      valueEnv: "BOTTLE_ROUTE_0",
    }],
  };
}

Deno.test("a complete egress config parses", () => {
  const cfg = parseEgressConfig(valid(), "egress.json");
  assert.equal(cfg.routes[0]?.host, "api.anthropic.com");
});

Deno.test("an unknown key is an error naming the file and the field", () => {
  assert.throws(
    () => parseEgressConfig({ ...valid(), extra: 1 }, "/x/egress.json"),
    /Invalid egress config "\/x\/egress.json": .*extra/,
  );
});

Deno.test("a route template without {value} is rejected with its path", () => {
  const cfg = valid();
  (cfg.routes as Record<string, unknown>[])[0]!.template = "Bearer";
  assert.throws(
    () => parseEgressConfig(cfg, "e.json"),
    /routes\[0\]\.template: must contain "\{value\}"/,
  );
});

Deno.test("a route may not inject a framing header", () => {
  const cfg = valid();
  (cfg.routes as Record<string, unknown>[])[0]!.header = "Content-Length";
  assert.throws(() => parseEgressConfig(cfg, "e.json"), /routes\[0\]\.header/);
});

Deno.test("duplicate route hosts are rejected", () => {
  const cfg = valid();
  cfg.routes = [...(cfg.routes as unknown[]), ...(cfg.routes as unknown[])];
  assert.throws(() => parseEgressConfig(cfg, "e.json"), /duplicate route "api.anthropic.com"/);
});

Deno.test("the upstream proxy must be an http URL with a port", () => {
  for (const bad of ["socks5://127.0.0.1:1", "http://127.0.0.1:", "http://127.0.0.1"]) {
    assert.throws(
      () => parseEgressConfig({ ...valid(), upstreamProxy: bad }, "e.json"),
      /upstreamProxy/,
    );
  }
});

Deno.test("route secrets come from the environment and are registered for redaction", () => {
  clearSecrets();
  try {
    const cfg = parseEgressConfig(valid(), "e.json");
    const [route] = resolveRoutes(
      cfg.routes,
      (n) => n === "BOTTLE_ROUTE_0" ? "sk-live-123456" : undefined,
    );
    assert.equal(route?.secret, "sk-live-123456");
    assert.equal(redact("key=sk-live-123456"), "key=***");
  } finally {
    clearSecrets();
  }
});

Deno.test("a missing route secret names the variable, never a value", () => {
  const cfg = parseEgressConfig(valid(), "e.json");
  assert.throws(
    () => resolveRoutes(cfg.routes, () => undefined),
    /Route 0 \("api.anthropic.com"\): environment variable "BOTTLE_ROUTE_0" is not set/,
  );
});

Deno.test("a secret with a line break is refused without echoing it", () => {
  clearSecrets();
  try {
    const cfg = parseEgressConfig(valid(), "e.json");
    assert.throws(
      () => resolveRoutes(cfg.routes, () => "abcd\r\nX-Injected: 1"),
      (err: Error) => /line break/.test(err.message) && !err.message.includes("Injected"),
    );
  } finally {
    clearSecrets();
  }
});

Deno.test("egress config: a proxy credential that is missing or short stops egress, named by its variable", () => {
  const auth = { tokenEnv: "BOTTLE_EGRESS_PROXY_TOKEN" };
  assert.throws(
    () => resolveProxyToken(auth, () => undefined),
    /"BOTTLE_EGRESS_PROXY_TOKEN" is not set/,
  );
  assert.throws(() => resolveProxyToken(auth, () => "short"), /shorter than 16/);
  assert.equal(resolveProxyToken(auth, () => "0123456789abcdef"), "0123456789abcdef");
  assert.equal(resolveProxyToken(undefined, () => undefined), undefined);
});
