import assert from "node:assert/strict";
import { join } from "node:path";
import { cli } from "../helpers/cli.ts";

Deno.test("cli: --help lists the commands and exits 0", async () => {
  const r = await cli(["--help"]);
  assert.equal(r.code, 0);
  for (const c of ["plan", "agents", "config", "doctor", "version"]) {
    assert.match(r.stdout, new RegExp(`\\n  ${c}\\b`));
  }
});

Deno.test("cli: every command has --help", async () => {
  for (const c of [["plan"], ["agents"], ["config", "schema"], ["doctor"], ["version"]]) {
    const r = await cli([...c, "--help"]);
    assert.equal(r.code, 0, c.join(" "));
    assert.match(r.stdout, /^Usage: bottle /);
  }
});

Deno.test("cli: an unknown flag is a usage error, exit 2", async () => {
  const r = await cli(["plan", "--bogus"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^bottle: unknown option '--bogus'.*\(see bottle --help\)$/m);
});

Deno.test("cli: a misspelt command gets a suggestion and exit 2", async () => {
  const r = await cli(["pln"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Did you mean plan\?/);
});

Deno.test("cli: a bad --backend value is a usage error", async () => {
  const r = await cli(["plan", "--backend", "podman"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Allowed choices are docker, smolmachines/);
});

Deno.test("cli: plan claude --json works with no agent file", async () => {
  const r = await cli(["plan", "claude", "--json", "--name", "t1"], {
    env: { ANTHROPIC_API_KEY: "sk-real-secret-value" },
  });
  assert.equal(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout);
  assert.equal(plan.schema, "bottle.plan/v3");
  assert.equal(plan.bottle.name, "claude-t1");
  assert.equal(plan.bottle.origin, "built-in");
  assert.ok(!r.stdout.includes("sk-real-secret-value"), "secret value leaked into plan output");
});

Deno.test("cli: start without a terminal says so before anything starts", async () => {
  // A docker that is not there: nothing may get as far as the engine.
  const env = { DOCKER_HOST: "unix:///nonexistent/docker.sock" };
  const r = await cli(["start"], { env });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /bottle start: Claude Code needs a terminal, and stdin is none/);
  assert.match(r.stderr, /bottle run -- PROMPT/);
  assert.doesNotMatch(r.stderr, /starting claude-/);
});

Deno.test("cli: plan says what a start makes in a few lines; --full is the whole plan", async () => {
  const env = { ANTHROPIC_API_KEY: "sk-real-secret-value" };
  const r = await cli(["plan", "claude", "--name", "t1"], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^bottle: +claude-t1 \(agent claude, from built-in, docker\)$/m);
  assert.match(r.stdout, /^reaches: +api\.anthropic\.com, /m);
  assert.match(r.stdout, /^credentials: api\.anthropic\.com \(x-api-key\)$/m);
  assert.match(r.stdout, /^daemons: +egress, pipelock, pipelock-routes$/m);
  assert.ok(r.stdout.split("\n").length < 20, r.stdout);
  assert.ok(!r.stdout.includes("sk-real-secret-value"));
  const full = await cli(["plan", "claude", "--name", "t1", "--full"], { env });
  assert.equal(full.code, 0, full.stderr);
  assert.match(full.stdout, /^schema: bottle\.plan\/v3$/m);
  assert.ok(!full.stdout.includes("sk-real-secret-value"));
});

Deno.test("cli: plan on smolmachines says how the VM reaches the bundle; a bad choice exits 2", async () => {
  const plan = (v: string) =>
    cli(["plan", "claude", "--backend", "smolmachines", "--name", "t1"], {
      env: { BOTTLE_SMOLVM_NETWORK: v },
    });
  const sockets = await plan("sockets");
  assert.equal(sockets.code, 0, sockets.stderr);
  assert.match(
    sockets.stdout,
    /^vm network: +none: the bundle's ports come in as sockets \(BOTTLE_SMOLVM_NETWORK=sockets\)$/m,
  );
  const address = await plan("bundle-address");
  assert.match(
    address.stdout,
    /^vm network: +the bundle's address alone \(BOTTLE_SMOLVM_NETWORK=bundle-address\)$/m,
  );
  const bad = await plan("tcp");
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /BOTTLE_SMOLVM_NETWORK: "tcp" is not one of sockets, bundle-address, auto/,
  );
  // On docker nothing asks.
  const docker = await cli(["plan", "claude", "--name", "t1"], {
    env: { BOTTLE_SMOLVM_NETWORK: "tcp" },
  });
  assert.equal(docker.code, 0, docker.stderr);
  assert.doesNotMatch(docker.stdout, /vm network/);
});

Deno.test("cli: smolmachines on a remote engine is refused, BOTTLE_SMOLVM_NETWORK=sockets or not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A docker CLI whose current context is another machine.
    const docker = join(dir, "docker");
    await Deno.writeTextFile(
      docker,
      `#!/bin/sh
case "$1" in
  info) echo '{"OSType":"linux","OperatingSystem":"Ubuntu 24.04","ServerVersion":"27.4.0"}' ;;
  context) echo '[{"Name":"big","Endpoints":{"docker":{"Host":"ssh://ana@big-box"}}}]' ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
`,
      { mode: 0o755 },
    );
    const plan = (v?: string) =>
      cli(["plan", "claude", "--backend", "smolmachines", "--name", "t1"], {
        env: { BOTTLE_DOCKER: docker, ...(v ? { BOTTLE_SMOLVM_NETWORK: v } : {}) },
      });
    const auto = await plan();
    assert.equal(auto.code, 2, auto.stderr);
    assert.match(
      auto.stderr,
      /--backend smolmachines cannot run on this engine: the engine is at ssh:\/\/ana@big-box/,
    );
    const sockets = await plan("sockets");
    assert.equal(sockets.code, 2, sockets.stderr);
    assert.match(
      sockets.stderr,
      /BOTTLE_SMOLVM_NETWORK=sockets cannot work with the engine at ssh:\/\/ana@big-box/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: a project bottle.yaml is discovered and shadows the user config", async () => {
  const home = await Deno.makeTempDir();
  const project = join(home, "proj");
  await Deno.mkdir(join(home, ".config", "bottle"), { recursive: true });
  await Deno.mkdir(project);
  await Deno.writeTextFile(
    join(project, "bottle.yaml"),
    "version: 1\nagents:\n  rev: {description: project}\n",
  );
  await Deno.writeTextFile(
    join(home, ".config", "bottle", "bottle.yaml"),
    "version: 1\nagents:\n  rev: {description: user}\n  other: {}\n",
  );
  const r = await cli(["agents", "--json"], { home, cwd: project });
  assert.equal(r.code, 0, r.stderr);
  const { agents, shadowed } = JSON.parse(r.stdout);
  const byName = Object.fromEntries(agents.map((a: { name: string }) => [a.name, a]));
  assert.equal(byName.rev.origin, join(project, "bottle.yaml"));
  assert.equal(byName.other.origin, join(home, ".config", "bottle", "bottle.yaml"));
  assert.equal(byName.claude.origin, "built-in");
  assert.deepEqual(shadowed, [{
    name: "rev",
    origin: join(home, ".config", "bottle", "bottle.yaml"),
  }]);
});

Deno.test("cli: a bad agent file exits 2 naming file, line and field", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "a.yaml");
  await Deno.writeTextFile(
    file,
    "version: 1\nagents:\n  a:\n    routes:\n      - host: https://x\n        value: {env: T}\n",
  );
  const r = await cli(["--config", file, "plan", "a"]);
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr,
    `bottle: ${file}:5:15: agents.a.routes[0].host: "https://x": expected "name" or "name:port"\n`,
  );
  assert.equal(r.stdout, "");
});

Deno.test("cli: an unknown agent exits 2 and lists the known ones", async () => {
  const r = await cli(["plan", "nope"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Unknown agent "nope".*known agents are claude/);
});

Deno.test("cli: config schema is a JSON Schema of the agent file", async () => {
  const r = await cli(["config", "schema"]);
  assert.equal(r.code, 0);
  const schema = JSON.parse(r.stdout);
  assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
  const agent = schema.properties.agents.additionalProperties;
  assert.ok(agent.properties.routes.items.properties.host);
  assert.equal(agent.additionalProperties, false);
  assert.deepEqual(schema.required, ["version"]);
});

Deno.test("cli: version prints bottle's version", async () => {
  const r = await cli(["version", "--json"]);
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  assert.equal(JSON.parse(r.stdout).bottle, denoJson.version);
});

Deno.test("cli: doctor reports a missing docker with a fix and exits 1", async () => {
  const r = await cli(["doctor"], {
    env: { BOTTLE_DOCKER: "/nonexistent/docker", SMOLVM: "/nonexistent/smolvm" },
  });
  assert.equal(r.code, 1);
  assert.match(r.stdout, /FAIL {2}docker client: Cannot run "\/nonexistent\/docker"/);
  assert.match(r.stdout, /fix: install Docker/);
  assert.match(r.stdout, /warn {2}smolvm: not installed/);
});

Deno.test("cli: a missing docker is one clear message and exit 2", async () => {
  const r = await cli(["ls"], {
    env: { BOTTLE_DOCKER: "/nonexistent/docker", SMOLVM: "/nonexistent/smolvm" },
  });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^bottle: Cannot run "\/nonexistent\/docker".*bottle doctor/);
});

Deno.test("cli: logs shows a stopped bottle's kept audit log readably and as JSON", async () => {
  const home = await Deno.makeTempDir();
  const logs = join(home, ".local", "state", "bottle", "logs", "claude-x1");
  await Deno.mkdir(logs, { recursive: true });
  const lines = [
    {
      time: "2026-11-24T06:00:01.000Z",
      bottle: "claude-x1",
      method: "POST",
      host: "api.anthropic.com",
      path: "/v1/messages",
      status: 200,
      bytes_up: 2048,
      bytes_down: 3 * 1024 * 1024,
      decision: "routed",
      reason: "",
    },
    {
      time: "2026-11-24T06:00:02.000Z",
      bottle: "claude-x1",
      method: "CONNECT",
      host: "evil.example",
      status: 403,
      bytes_up: 0,
      bytes_down: 0,
      decision: "denied",
      reason: "not in allowlist",
    },
  ];
  await Deno.writeTextFile(
    join(logs, "audit.jsonl"),
    lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
  );
  const r = await cli(["logs", "claude-x1"], { home });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout,
    "06:00:01 POST api.anthropic.com/v1/messages 200 routed 2.0 kB up, 3.0 MB down\n" +
      "06:00:02 CONNECT evil.example 403 denied (not in allowlist) 0 B up, 0 B down\n",
  );
  const j = await cli(["logs", "claude-x1", "--json"], { home });
  assert.deepEqual(j.stdout.trim().split("\n").map((l) => JSON.parse(l)), lines);
  const missing = await cli(["logs", "claude-nope"], { home });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /No bottle named "claude-nope"/);
  const bad = await cli(["logs", "../../etc"], { home });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Invalid bottle name/);
});

Deno.test("cli: an empty audit log is said to be empty, on stderr", async () => {
  const home = await Deno.makeTempDir();
  const logs = join(home, ".local", "state", "bottle", "logs", "claude-x3");
  await Deno.mkdir(logs, { recursive: true });
  await Deno.writeTextFile(join(logs, "audit.jsonl"), "");
  for (const args of [["logs", "claude-x3"], ["logs", "claude-x3", "--json"]]) {
    const r = await cli(args, { home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /the audit log of claude-x3 is empty/);
  }
});

Deno.test("cli: logs shows agent-controlled text escaped, and --json stays exact JSON", async () => {
  const home = await Deno.makeTempDir();
  const logs = join(home, ".local", "state", "bottle", "logs", "claude-x2");
  await Deno.mkdir(logs, { recursive: true });
  const line = {
    time: "2026-11-24T06:00:01.000Z",
    method: "GET",
    host: "evil.example\x1b]0;PWNED\x07",
    path: "/\u009b2J\r",
    status: 403,
    bytes_up: 0,
    bytes_down: 0,
    decision: "denied",
    reason: "not in allowlist\x1b[8m",
  };
  await Deno.writeTextFile(join(logs, "audit.jsonl"), JSON.stringify(line) + "\n");
  const r = await cli(["logs", "claude-x2"], { home });
  assert.equal(r.code, 0, r.stderr);
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(r.stdout, /[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
  assert.match(r.stdout, /evil\.example\\x1b\]0;PWNED\\x07\/\\x9b2J\\r 403/);
  const j = await cli(["logs", "claude-x2", "--json"], { home });
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(j.stdout, /[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
  assert.deepEqual(JSON.parse(j.stdout), line);
});

Deno.test("cli: a teardown failure does not hide the error that ended a launch", async () => {
  const { unwrapSuppressed } = await import("../../src/cli/app.ts");
  const { CancelledError } = await import("../../src/errors.ts");
  // What `await using` makes when the body threw and two teardown steps failed.
  const launch = new CancelledError("SIGTERM");
  const stackErrors = new SuppressedError(
    new Error("network rm failed"),
    new Error("rm -f failed"),
  );
  const err = new SuppressedError(stackErrors, launch);
  const { original, teardown } = unwrapSuppressed(err);
  assert.equal(original, launch);
  assert.deepEqual(teardown.map((e) => (e as Error).message), [
    "rm -f failed",
    "network rm failed",
  ]);
});

Deno.test("cli: plan warns about a route secret that start could not read", async () => {
  const home = await Deno.makeTempDir();
  await Deno.writeTextFile(
    join(home, "bottle.yaml"),
    "version: 1\nagents:\n  w:\n    anthropic: none\n    routes:\n" +
      "      - host: api.example.com\n        value: { env: NOT_SET_HERE }\n" +
      "      - host: b.example.com\n        value: { file: ./missing-token }\n",
  );
  const r = await cli(["plan", "w", "--json"], { home, cwd: home });
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /start will refuse route "api\.example\.com": host environment variable "NOT_SET_HERE" is not set/,
  );
  assert.match(
    r.stderr,
    /start will refuse route "b\.example\.com": cannot read file ".*missing-token"/,
  );
});

Deno.test("cli: a missing skill, prompt file or SKILL.md fails plan as it fails start", async () => {
  const home = await Deno.makeTempDir();
  await Deno.mkdir(join(home, "skills", "noskill"), { recursive: true });
  const cases: [string, RegExp][] = [
    ["prompt_file: ./nope.md", /prompt_file: ".*nope\.md" does not exist/],
    ["skills: [./skills/missing]", /skills: ".*skills\/missing" does not exist/],
    [
      "skills: [./skills/noskill]",
      /every skill needs a SKILL\.md\): ".*noskill\/SKILL\.md" does not exist/,
    ],
  ];
  for (const [line, want] of cases) {
    await Deno.writeTextFile(
      join(home, "bottle.yaml"),
      `version: 1\nagents:\n  w:\n    anthropic: none\n    ${line}\n`,
    );
    const r = await cli(["plan", "w"], { home, cwd: home });
    assert.equal(r.code, 2, `${line}: ${r.stderr}`);
    assert.match(r.stderr, want);
  }
});

Deno.test("cli: run takes the agent before -- and the prompt after it", async (t) => {
  const home = await Deno.makeTempDir({ prefix: "bottle-home-" });
  await Deno.writeTextFile(
    join(home, "bottle.yaml"),
    "version: 1\nagents:\n  tool:\n    command: [bash]\n    anthropic: none\n",
  );
  // A docker that is not there: what parses gets as far as the engine.
  const env = { DOCKER_HOST: "unix:///nonexistent/docker.sock" };
  const run = (args: string[]) => cli(["run", ...args], { cwd: home, home, env });
  await t.step("the agent named before -- is the one planned", async () => {
    const r = await run(["tool", "--output-format", "json", "--", "hi", "there"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bottle run runs claude -p, but agent "tool" runs "bash"/);
  });
  await t.step("with nothing before --, the default agent; an option-like prompt", async () => {
    const r = await run(["--", "--name", "x"]);
    assert.match(r.stderr, /bottle: starting claude-[a-z0-9]+ \(docker\)/);
  });
  for (
    const [args, message] of [
      [["tool", "hi"], /put the prompt after "--"/],
      [["a", "b", "--", "c"], /one agent name before "--", got "a" "b"/],
      [["tool", "--"], /missing prompt after --/],
      [["--output-format", "yaml", "--", "hi"], /Allowed choices are text, json, stream-json/],
    ] as const
  ) {
    await t.step(`refused: ${args.join(" ")}`, async () => {
      const r = await run([...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    });
  }
});

Deno.test("cli: --config works after the command's name too; one version string", async () => {
  const home = await Deno.makeTempDir();
  const file = join(home, "f.yaml");
  await Deno.writeTextFile(file, "version: 1\nagents:\n  demo: {anthropic: none}\n");
  for (
    const args of [["plan", "demo", "--config", file, "--json"], [
      "--config",
      file,
      "plan",
      "demo",
      "--json",
    ]]
  ) {
    const r = await cli(args, { home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).bottle.agent, "demo");
  }
  // After the name it wins over one before it.
  const both = await cli(["--config", "/nonexistent.yaml", "agents", "--config", file, "--json"], {
    home,
  });
  assert.equal(both.code, 0, both.stderr);
  assert.ok(JSON.parse(both.stdout).agents.some((a: { name: string }) => a.name === "demo"));
  const long = await cli(["--version"]);
  const cmd = await cli(["version"]);
  assert.equal(long.stdout, cmd.stdout);
  assert.match(cmd.stdout, /^bottle \d+\.\d+\.\d+ \(deno /);
});

Deno.test("cli: start takes a prompt only after -- and only with --detach", async () => {
  const attended = await cli(["start", "--", "fix", "it"]);
  assert.equal(attended.code, 2);
  assert.match(attended.stderr, /a prompt runs unattended, with --detach .*bottle run/);
  const noDash = await cli(["start", "claude", "fix"]);
  assert.equal(noDash.code, 2);
  assert.match(noDash.stderr, /one agent name, got "claude" "fix" \(a prompt goes after --\)/);
  const empty = await cli(["start", "--detach", "--", " "]);
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /bottle start: missing prompt after --/);
});
