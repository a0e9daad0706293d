import assert from "node:assert/strict";
import { parse, parseAllDocuments, stringify } from "yaml";
import { z } from "zod";
import {
  normalizeAllowlist,
  normalizeHeaderNames,
  PIPELOCK_DEFAULT_IGNORE_HEADERS,
  PIPELOCK_DOC_REF,
  pipelockConfig,
  type PipelockConfigInput,
} from "../../src/bundle/pipelock/pipelock_config.ts";

const DocumentedKeys = z.strictObject({
  source: z.object({
    repo: z.string(),
    path: z.string(),
    commit: z.string().regex(/^[0-9a-f]{40}$/),
  })
    .loose(),
  keys: z.array(z.string().min(1)).min(1),
});

const documented = DocumentedKeys.parse(
  JSON.parse(
    await Deno.readTextFile(new URL("../testdata/pipelock/documented_keys.json", import.meta.url)),
  ),
);
const DOCUMENTED = new Set(documented.keys);

/** Every key path in a parsed config: `a`, `a.b`, and `a[].b` for lists of mappings. */
function keyPaths(value: unknown, prefix = ""): string[] {
  if (Array.isArray(value)) {
    return value.flatMap((item) => (isMapping(item) ? keyPaths(item, `${prefix}[]`) : []));
  }
  if (!isMapping(value)) return [];
  return Object.entries(value).flatMap(([key, child]) => {
    const path = prefix === "" ? key : `${prefix}.${key}`;
    return [path, ...keyPaths(child, path)];
  });
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function undocumented(config: unknown): string[] {
  return [...new Set(keyPaths(config))].filter((p) => !DOCUMENTED.has(p));
}

const BASE: PipelockConfigInput = {
  allowlist: ["api.anthropic.com"],
  listen: "127.0.0.1:8888",
  caCertPath: "/bundle/pipelock/ca.pem",
  caKeyPath: "/bundle/pipelock/ca-key.pem",
  injectedHeaders: [],
};

const INPUTS: Record<string, PipelockConfigInput> = {
  "no routes": BASE,
  "anthropic route": { ...BASE, injectedHeaders: ["x-api-key", "Authorization"] },
  "many hosts and routes, file log": {
    ...BASE,
    allowlist: [
      "GitHub.com",
      "*.githubusercontent.com",
      "docs.example.org.",
      "api.anthropic.com",
    ],
    injectedHeaders: ["authorization", "X-Api-Key", "private-token", "AUTHORIZATION"],
    logPath: "/state/pipelock/audit.jsonl",
  },
  "other loopback port": { ...BASE, listen: "localhost:18888" },
};

// deno-lint-ignore no-explicit-any
function generated(input: PipelockConfigInput): any {
  return parse(pipelockConfig(input));
}

for (const [name, input] of Object.entries(INPUTS)) {
  Deno.test(`every key pipelock gets is documented (${name})`, () => {
    assert.deepEqual(undocumented(generated(input)), [], `not in ${documented.source.path}`);
  });
}

Deno.test("the documented-key check catches a misspelt or invented key", () => {
  const config = generated(INPUTS["anthropic route"]!);
  config.forward_proxy.enable = true;
  config.tls_interception.ca_certificate = "/x.pem";
  config.telemetry = { enabled: false };
  assert.deepEqual(undocumented(config).sort(), [
    "forward_proxy.enable",
    "telemetry",
    "telemetry.enabled",
    "tls_interception.ca_certificate",
  ]);
});

Deno.test("the documented keys name the doc commit the generator cites", () => {
  assert.equal(documented.source.repo, "luckyPipewrench/pipelock");
  assert.ok(
    PIPELOCK_DOC_REF.includes(`@${documented.source.commit}:${documented.source.path}`),
    `${PIPELOCK_DOC_REF} vs ${documented.source.commit}`,
  );
});

Deno.test("strict mode, version 1, enforcing, with the normalized allowlist", () => {
  const input = INPUTS["many hosts and routes, file log"]!;
  const c = generated(input);
  assert.equal(c.version, 1);
  assert.equal(c.mode, "strict");
  assert.equal(c.enforce, true);
  assert.equal(c.explain_blocks, false);
  assert.deepEqual(c.api_allowlist, normalizeAllowlist(input.allowlist));
  assert.deepEqual(c.api_allowlist, [
    "*.githubusercontent.com",
    "api.anthropic.com",
    "docs.example.org",
    "github.com",
  ]);
});

Deno.test("the listen address is in fetch_proxy.listen, where pipelock reads it", () => {
  assert.equal(generated(BASE).fetch_proxy.listen, "127.0.0.1:8888");
  assert.equal(generated(INPUTS["other loopback port"]!).fetch_proxy.listen, "localhost:18888");
});

Deno.test("the forward proxy is enabled with SNI verification", () => {
  assert.deepEqual(generated(BASE).forward_proxy, { enabled: true, sni_verification: true });
});

Deno.test("TLS interception is on with the bottle's CA and no passthrough", () => {
  assert.deepEqual(generated(BASE).tls_interception, {
    enabled: true,
    ca_cert: "/bundle/pipelock/ca.pem",
    ca_key: "/bundle/pipelock/ca-key.pem",
    passthrough_domains: [],
  });
});

Deno.test("Sentry is off and taint is observed, not enforced", () => {
  const c = generated(BASE);
  assert.deepEqual(c.sentry, { enabled: false, dsn: "" });
  assert.deepEqual(c.taint, { policy: "permissive" });
});

Deno.test("DLP: defaults on, body and header scanning block", () => {
  const c = generated(BASE);
  assert.deepEqual(c.dlp, { include_defaults: true, scan_env: true });
  assert.equal(c.request_body_scanning.enabled, true);
  assert.equal(c.request_body_scanning.action, "block");
  assert.equal(c.request_body_scanning.scan_headers, true);
  assert.equal(c.request_body_scanning.header_mode, "all");
});

Deno.test("without routes, only pipelock's default headers are left unscanned", () => {
  assert.deepEqual(generated(BASE).request_body_scanning.ignore_headers, [
    ...PIPELOCK_DEFAULT_IGNORE_HEADERS,
  ]);
});

Deno.test("injected headers are left out of header scanning, the defaults kept", () => {
  const ignored: string[] = generated(INPUTS["many hosts and routes, file log"]!)
    .request_body_scanning.ignore_headers;
  assert.deepEqual(ignored, [
    ...PIPELOCK_DEFAULT_IGNORE_HEADERS,
    "Authorization",
    "Private-Token",
    "X-Api-Key",
  ]);
  const lower = ignored.map((h) => h.toLowerCase());
  assert.equal(new Set(lower).size, lower.length, "no duplicates");
  assert.ok(!lower.includes("cookie"), "other credential headers stay scanned");
  assert.ok(!lower.includes("proxy-authorization"), "other credential headers stay scanned");
});

Deno.test("an injected header already ignored by default is not repeated", () => {
  const c = generated({ ...BASE, injectedHeaders: ["user-agent", "X-Api-Key"] });
  assert.deepEqual(c.request_body_scanning.ignore_headers, [
    ...PIPELOCK_DEFAULT_IGNORE_HEADERS,
    "X-Api-Key",
  ]);
});

Deno.test("logs go to stdout, or to the given file", () => {
  assert.deepEqual(generated(BASE).logging, {
    format: "json",
    output: "stdout",
    include_allowed: true,
    include_blocked: true,
  });
  const withFile = generated(INPUTS["many hosts and routes, file log"]!).logging;
  assert.equal(withFile.output, "file");
  assert.equal(withFile.file, "/state/pipelock/audit.jsonl");
});

for (const [name, input] of Object.entries(INPUTS)) {
  Deno.test(`the YAML is one document and round-trips (${name})`, () => {
    const text = pipelockConfig(input);
    const docs = parseAllDocuments(text);
    assert.ok(Array.isArray(docs) && docs.length === 1, "exactly one YAML document");
    assert.deepEqual(docs[0]!.errors, []);
    assert.ok(!/^---/m.test(text), "no document separator, which pipelock rejects");
    const once = parse(text, { uniqueKeys: true });
    assert.deepEqual(parse(stringify(once)), once);
  });
}

Deno.test("hosts that YAML would misread stay strings", () => {
  const c = generated({ ...BASE, allowlist: ["*.example.com", "1.2", "true", "on.example"] });
  assert.deepEqual(c.api_allowlist, ["*.example.com", "1.2", "on.example", "true"]);
  assert.ok(c.api_allowlist.every((h: unknown) => typeof h === "string"));
});

Deno.test("the same bottle always yields the same file", () => {
  const a = pipelockConfig({
    ...BASE,
    allowlist: ["b.example", "a.example"],
    injectedHeaders: ["b", "a"],
  });
  const b = pipelockConfig({
    ...BASE,
    allowlist: ["A.example", "b.example"],
    injectedHeaders: ["A", "b"],
  });
  assert.equal(a, b);
});

Deno.test("normalizeAllowlist dedupes, lowercases and sorts", () => {
  assert.deepEqual(
    normalizeAllowlist([
      " Example.COM ",
      "example.com.",
      "*.B.example",
      "a.example",
      "*.b.example",
    ]),
    ["*.b.example", "a.example", "example.com"],
  );
});

Deno.test("normalizeAllowlist refuses what pipelock would refuse", () => {
  for (
    const bad of [
      "",
      "https://example.com",
      "example.com:443",
      "a.*.example",
      "*.com",
      "ex ample.com",
    ]
  ) {
    assert.throws(() => normalizeAllowlist([bad]), /^Error: Cannot allow ".*" in pipelock: /, bad);
  }
});

Deno.test("normalizeHeaderNames gives canonical, unique header names", () => {
  assert.deepEqual(normalizeHeaderNames(["x-api-key", "X-API-KEY", "authorization"]), [
    "Authorization",
    "X-Api-Key",
  ]);
  assert.throws(() => normalizeHeaderNames(["Bad Header"]), /not a header name/);
  assert.throws(() => normalizeHeaderNames(["x-a:b"]), /not a header name/);
});

Deno.test("bad input gets one clear error", () => {
  const cases: [Partial<PipelockConfigInput>, RegExp][] = [
    [{ allowlist: [] }, /allowlist is empty/],
    [{ listen: "0.0.0.0:8888" }, /loopback host:port/],
    [{ listen: "127.0.0.1" }, /loopback host:port/],
    [{ listen: "127.0.0.1:0" }, /loopback host:port/],
    [{ listen: "127.0.0.1:70000" }, /loopback host:port/],
    [{ caCertPath: "ca.pem" }, /CA certificate path "ca.pem" must be absolute/],
    [{ caKeyPath: "" }, /CA key path "" must be absolute/],
    [{ logPath: "audit.log" }, /log path "audit.log" must be absolute/],
  ];
  for (const [over, message] of cases) {
    assert.throws(() => pipelockConfig({ ...BASE, ...over }), message, JSON.stringify(over));
  }
});
