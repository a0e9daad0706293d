/**
 * Hostile agent files: every one makes `bottle start` exit 2 with one
 * message naming the file, the line and the field, and nothing is started:
 * the docker binary bottle is given records any call, and must see none
 * that creates anything; no state dir appears.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli } from "../helpers/cli.ts";

interface Case {
  name: string;
  /** The agent file (bytes, to allow what is not UTF-8). */
  file: string | Uint8Array;
  /** `line` of the message, or undefined when the file has none (empty, binary). */
  line?: number;
  /** What the message must say (field path or reason). */
  says: RegExp;
}

const head = "version: 1\nagents:\n  a:\n";
const agent = (body: string) => head + body;
const route = (fields: string) =>
  agent(
    `    anthropic: none\n    routes:\n      - ${
      fields.split("\n").map((l) => l.trim()).join("\n        ")
    }\n`,
  );

const cases: Case[] = [
  // Syntax
  { name: "empty file", file: "", says: /empty|expected a mapping|version/ },
  { name: "only a comment", file: "# nothing\n", says: /version|mapping/ },
  { name: "tab indentation", file: "version: 1\nagents:\n\ta: {}\n", line: 3, says: /tab|indent/i },
  { name: "unclosed flow map", file: "version: 1\nagents: {a: {\n", line: 3, says: /invalid YAML/ },
  {
    name: "unclosed quote",
    file: 'version: 1\nagents:\n  a:\n    prompt: "x\n',
    line: 5,
    says: /quote/,
  },
  {
    name: "bad indentation",
    file: "version: 1\nagents:\n  a:\n   command: [x]\n  b: 1\n",
    says: /./,
  },
  {
    name: "duplicate agent key",
    file: "version: 1\nagents:\n  a: {}\n  a: {}\n",
    line: 4,
    says: /duplicate|unique/i,
  },
  {
    name: "duplicate field key",
    file: agent("    prompt: x\n    prompt: y\n"),
    line: 5,
    says: /duplicate|unique/i,
  },
  { name: "top-level list", file: "- version: 1\n", line: 1, says: /mapping|object/ },
  { name: "top-level scalar", file: "hello\n", line: 1, says: /./ },
  {
    name: "non-UTF-8 bytes",
    file: new Uint8Array([0x76, 0x65, 0x72, 0xff, 0xfe, 0x0a]),
    line: 1,
    says: /not UTF-8/,
  },
  { name: "NUL in an env value", file: agent('    env: { A: "a\\0b" }\n'), line: 4, says: /NUL/ },
  { name: "alias bomb", file: billionLaughs(), says: /alias|too many|resource|large/i },
  { name: "recursive alias", file: "version: 1\nagents: &x\n  a: *x\n", says: /./ },
  { name: "yaml tag", file: agent("    prompt: !!binary aGk=\n"), line: 4, says: /prompt/ },
  // Versions and top level
  { name: "missing version", file: "agents: {}\n", says: /version/ },
  { name: "version 2", file: "version: 2\nagents: {}\n", line: 1, says: /version/ },
  { name: "version as string", file: 'version: "1"\nagents: {}\n', line: 1, says: /version/ },
  { name: "unknown top-level key", file: "version: 1\nagentz: {}\n", line: 2, says: /agentz/ },
  { name: "agents is a list", file: "version: 1\nagents: [a]\n", line: 2, says: /agents/ },
  {
    name: "build misspelt",
    file: "version: 1\nbuild:\n  ca_cert: [x]\n",
    line: 3,
    says: /build\.ca_cert/,
  },
  {
    name: "build ca_certs not a list",
    file: "version: 1\nbuild:\n  ca_certs: x.pem\n",
    line: 3,
    says: /ca_certs/,
  },
  // Agent names
  {
    name: "agent name with upper case",
    file: "version: 1\nagents:\n  Bad: {}\n",
    line: 3,
    says: /agent name/,
  },
  {
    name: "agent name with a slash",
    file: "version: 1\nagents:\n  a/b: {}\n",
    line: 3,
    says: /agent name/,
  },
  {
    name: "agent name too long",
    file: `version: 1\nagents:\n  ${"a".repeat(40)}: {}\n`,
    line: 3,
    says: /agent name/,
  },
  {
    name: "agent name path escape",
    file: 'version: 1\nagents:\n  "../../etc": {}\n',
    line: 3,
    says: /agent name/,
  },
  // Types and unknown keys
  { name: "misspelt key", file: agent("    promt: x\n"), line: 4, says: /promt.*prompt|prompt/ },
  {
    name: "unknown key",
    file: agent("    favourite_colour: blue\n"),
    line: 4,
    says: /favourite_colour/,
  },
  { name: "command not a list", file: agent("    command: claude\n"), line: 4, says: /command/ },
  { name: "command empty", file: agent("    command: []\n"), line: 4, says: /command/ },
  { name: "command with empty arg", file: agent('    command: [""]\n'), line: 4, says: /command/ },
  { name: "backend unknown", file: agent("    backend: firecracker\n"), line: 4, says: /backend/ },
  {
    name: "supervise not bool",
    file: agent("    supervise: yes please\n"),
    line: 4,
    says: /supervise/,
  },
  {
    name: "supervise timeout not a duration",
    file: agent("    supervise: { timeout: 10 minutes }\n"),
    line: 4,
    says: /supervise\.timeout: expected a duration like "90s", "30m" or "2h"/,
  },
  {
    name: "supervise unknown key",
    file: agent("    supervise: { timout: 5m }\n"),
    line: 4,
    says: /timout/,
  },
  { name: "env not a map", file: agent("    env: [A=1]\n"), line: 4, says: /env/ },
  { name: "env bad name", file: agent("    env: { 1BAD: x }\n"), line: 4, says: /env/ },
  { name: "env value a number", file: agent("    env: { A: 1 }\n"), line: 4, says: /env\.A/ },
  {
    name: "prompt and prompt_file",
    file: agent("    prompt: x\n    prompt_file: y\n"),
    says: /prompt_file/,
  },
  { name: "skills not a list", file: agent("    skills: ./s\n"), line: 4, says: /skills/ },
  {
    name: "allowed domain URL",
    file: agent("    allowed_domains: [https://x.com]\n"),
    line: 4,
    says: /allowed_domains/,
  },
  {
    name: "allowed domain bad wildcard",
    file: agent('    allowed_domains: ["a.*.com"]\n'),
    line: 4,
    says: /allowed_domains/,
  },
  {
    name: "allowed domain huge",
    file: agent(`    allowed_domains: [${"a".repeat(300)}.com]\n`),
    line: 4,
    says: /allowed_domains/,
  },
  {
    name: "resources cpus negative",
    file: agent("    resources: { cpus: -1 }\n"),
    line: 4,
    says: /cpus/,
  },
  {
    name: "resources cpus huge",
    file: agent("    resources: { cpus: 100000 }\n"),
    line: 4,
    says: /cpus/,
  },
  {
    name: "resources memory bad",
    file: agent("    resources: { memory: lots }\n"),
    line: 4,
    says: /memory/,
  },
  {
    name: "resources pids small",
    file: agent("    resources: { pids: 1 }\n"),
    line: 4,
    says: /pids/,
  },
  { name: "resources unknown", file: agent("    resources: { gpus: 1 }\n"), line: 4, says: /gpus/ },
  {
    name: "mount relative target",
    file: agent("    mounts: [{ source: ., target: data }]\n"),
    line: 4,
    says: /target/,
  },
  {
    name: "mount without source",
    file: agent("    mounts: [{ target: /data }]\n"),
    line: 4,
    says: /source/,
  },
  {
    name: "image without dockerfile",
    file: agent("    image: { context: . }\n"),
    line: 4,
    says: /dockerfile/,
  },
  {
    name: "anthropic misspelt",
    file: agent("    anthropic: automatic\n"),
    line: 4,
    says: /anthropic/,
  },
  {
    name: "anthropic two sources",
    file: agent("    anthropic: { api_key: { env: A, file: b } }\n"),
    line: 4,
    says: /exactly one/,
  },
  // Routes and secrets
  {
    name: "route host URL",
    file: route("host: https://x\n  value: { env: T }"),
    says: /routes\[0\]\.host/,
  },
  {
    name: "route wildcard",
    file: route('host: "*.github.io"\n  value: { env: T }'),
    says: /wildcard routes are refused/,
  },
  {
    name: "route host empty",
    file: route('host: ""\n  value: { env: T }'),
    says: /routes\[0\]\.host/,
  },
  {
    name: "route host with path",
    file: route("host: a.com/x\n  value: { env: T }"),
    says: /routes\[0\]\.host/,
  },
  { name: "route port 0", file: route("host: a.com:0\n  value: { env: T }"), says: /port/ },
  {
    name: "route header Host",
    file: route("host: a.com\n  header: Host\n  value: { env: T }"),
    says: /frames or routes/,
  },
  {
    name: "route header bad token",
    file: route('host: a.com\n  header: "X Bad"\n  value: { env: T }'),
    says: /header/,
  },
  {
    name: "route template without value",
    file: route('host: a.com\n  template: "Bearer"\n  value: { env: T }'),
    says: /template/,
  },
  { name: "route without value", file: route("host: a.com"), says: /value/ },
  { name: "secret with no source", file: route("host: a.com\n  value: {}"), says: /exactly one/ },
  {
    name: "secret with two sources",
    file: route("host: a.com\n  value: { env: T, file: x }"),
    says: /exactly one/,
  },
  { name: "secret env bad name", file: route("host: a.com\n  value: { env: 'A-B' }"), says: /env/ },
  {
    name: "secret command empty",
    file: route("host: a.com\n  value: { command: [] }"),
    says: /command/,
  },
  {
    name: "two routes for one host",
    file: agent(
      "    anthropic: none\n    routes:\n" +
        "      - { host: a.com, value: { env: A } }\n      - { host: A.com:443, value: { env: B } }\n",
    ),
    line: 7,
    says: /a second route/,
  },
  {
    name: "placeholder bad name",
    file: route("host: a.com\n  placeholder_env: 'x y'\n  value: { env: T }"),
    says: /placeholder_env/,
  },
  // git
  {
    name: "git url not a url",
    file: agent("    git: [{ url: not-a-url }]\n"),
    line: 4,
    says: /url/,
  },
  {
    name: "git path relative",
    file: agent("    git: [{ url: 'https://h/r.git', path: repo }]\n"),
    line: 4,
    says: /path/,
  },
  {
    name: "git unknown key",
    file: agent("    git: [{ url: 'https://h/r.git', force: true }]\n"),
    line: 4,
    says: /force/,
  },
];

function billionLaughs(): string {
  const lines = ["version: 1", 'a0: &a0 "lol"'];
  for (let i = 1; i < 12; i++) {
    lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]`);
  }
  lines.push("agents: {}");
  return lines.join("\n") + "\n";
}

/** A docker that logs every call and fails: bottle must not get as far as calling it. */
async function recordingDocker(dir: string): Promise<{ bin: string; calls(): Promise<string> }> {
  const log = join(dir, "docker-calls.log");
  const bin = join(dir, "docker");
  await Deno.writeTextFile(bin, `#!/bin/sh\necho "$@" >> '${log}'\nexit 1\n`, { mode: 0o755 });
  return { bin, calls: () => Deno.readTextFile(log).catch(() => "") };
}

Deno.test(`hostile agent files: ${cases.length} malformed files, each exit 2, located, nothing started`, async (t) => {
  assert.ok(cases.length >= 60, `only ${cases.length} cases`);
  const home = await Deno.makeTempDir({ prefix: "bottle-hostile-" });
  const docker = await recordingDocker(home);
  try {
    for (const c of cases) {
      await t.step(c.name, async () => {
        const dir = await Deno.makeTempDir({ dir: home });
        const file = join(dir, "bottle.yaml");
        if (typeof c.file === "string") await Deno.writeTextFile(file, c.file);
        else await Deno.writeFile(file, c.file);
        const started = performance.now();
        const r = await cli(["start", "a", "--detach"], {
          home,
          cwd: dir,
          env: { BOTTLE_DOCKER: docker.bin, ANTHROPIC_API_KEY: "sk-ant-test" },
        });
        assert.ok(performance.now() - started < 5000, "took too long (an alias bomb expanded?)");
        assert.equal(r.code, 2, `${c.name}: exit ${r.code}: ${r.stderr}`);
        const lines = r.stderr.trim().split("\n");
        assert.equal(lines.length >= 1, true);
        assert.match(lines[0]!, /^bottle: /);
        // The file is named, and the line where there is one.
        assert.ok(r.stderr.includes(file), `${c.name}: file not named: ${r.stderr}`);
        if (c.line !== undefined) {
          assert.match(
            r.stderr,
            new RegExp(`${file.replaceAll("/", "\\/")}:${c.line}:\\d+: `),
            r.stderr,
          );
        }
        assert.match(r.stderr, c.says, `${c.name}: ${r.stderr}`);
        assert.equal(r.stdout, "");
      });
    }
    // Nothing was started: no engine call, no state dir.
    assert.equal(await docker.calls(), "");
    const state = join(home, ".local", "state", "bottle", "bottles");
    const made = await Array.fromAsync(Deno.readDir(state)).catch(() => []);
    assert.deepEqual(made, []);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
