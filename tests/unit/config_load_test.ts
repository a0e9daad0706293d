import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadAgentFile, parseAgentFile } from "../../src/config/load.ts";
import { ConfigError } from "../../src/config/config_error.ts";
import { UserError } from "../../src/errors.ts";
import { builtinAgents } from "../../src/config/builtin.ts";

const DIR = fileURLToPath(new URL("../testdata/config/", import.meta.url));
/** Set UPDATE=1 to rewrite the expected-message snapshots after a deliberate change. */
const UPDATE = Deno.env.get("UPDATE") === "1";

for (const entry of Deno.readDirSync(join(DIR, "invalid"))) {
  if (!entry.name.endsWith(".yaml")) continue;
  const file = join(DIR, "invalid", entry.name);
  Deno.test(`config: ${entry.name} is rejected with a located message`, async () => {
    const err = await loadAgentFile(file).then(
      () => assert.fail("expected a ConfigError"),
      (e) => e,
    );
    assert.ok(err instanceof ConfigError, String(err));
    assert.ok(err instanceof UserError);
    assert.equal(err.exitCode, 2);
    const message = err.message.replaceAll(DIR, "");
    const expectedFile = file.replace(/\.yaml$/, ".expected");
    if (UPDATE) await Deno.writeTextFile(expectedFile, message + "\n");
    assert.equal(message, (await Deno.readTextFile(expectedFile)).trimEnd());
    // Every problem names the file and a line:column.
    for (const line of message.split("\n")) {
      assert.match(line, new RegExp(`^invalid/${entry.name}:\\d+:\\d+: `));
    }
  });
}

Deno.test("config: a full valid file parses with defaults filled in", async () => {
  const f = await loadAgentFile(join(DIR, "valid", "full.yaml"));
  const r = f.agents.reviewer!;
  assert.equal(r.routes[0]!.header, "Authorization");
  assert.deepEqual(r.routes[1]!.value, { file: "~/.example-key" });
  assert.deepEqual(r.git[0]!.branches, ["agent/*"]);
  assert.deepEqual(r.mounts[0], { source: "./data", target: "/data", readonly: true });
  const m = f.agents.minimal!;
  assert.equal(m.backend, "docker");
  assert.deepEqual(m.command, ["claude"]);
  assert.equal(m.anthropic, "auto");
  assert.deepEqual(f.build.ca_certs, ["./corp-ca.pem"]);
});

Deno.test("config: unknown keys get a did-you-mean suggestion", () => {
  assert.throws(
    () => parseAgentFile("version: 1\nagents:\n  a:\n    rotues: []\n", "x.yaml"),
    /x\.yaml:4:5: agents\.a\.rotues: unknown field "rotues"; did you mean "routes"\?/,
  );
});

Deno.test("config: the example from the issue reads as promised", () => {
  const text =
    "version: 1\nagents:\n  reviewer:\n    routes:\n      - host: https://x\n        value: {env: T}\n";
  assert.throws(
    () => parseAgentFile(text, "bottle.yaml"),
    (e: Error) =>
      e.message ===
        'bottle.yaml:5:15: agents.reviewer.routes[0].host: "https://x": expected "name" or "name:port"',
  );
});

Deno.test("config: several problems are all reported, in file order", () => {
  const text = "version: 1\nagents:\n  a:\n    backend: x\n    supervise: 3\n";
  assert.throws(() => parseAgentFile(text, "f.yaml"), (e: Error) => {
    const lines = e.message.split("\n");
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^f\.yaml:4:/);
    assert.match(lines[1]!, /^f\.yaml:5:.*expected boolean or a mapping, got number 3/);
    return true;
  });
});

Deno.test("config: a missing file is a ConfigError naming the file", async () => {
  await assert.rejects(loadAgentFile("/nonexistent/bottle.yaml"), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /^\/nonexistent\/bottle\.yaml: cannot read agent file: no such file$/);
    return true;
  });
});

Deno.test("config: the built-in claude agent needs no file", () => {
  const agents = builtinAgents();
  assert.deepEqual(Object.keys(agents), ["claude"]);
  assert.deepEqual(agents.claude!.command, ["claude"]);
  assert.equal(agents.claude!.anthropic, "auto");
});
