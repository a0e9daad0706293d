/**
 * Claude Code's home is kept across bottles of one agent: what the first
 * bottle's Claude Code wrote (onboarding done, a trusted workspace,
 * settings) is there in the next one; `--fresh` starts without it;
 * `cleanup --homes` removes it; and the kept file holds no credential.
 */
import assert from "node:assert/strict";
import { bottle, bottleEnv, inContainer, projectWith } from "../helpers/bottle_env.ts";
import { readTarFiles } from "../../src/archive/tar.ts";
import { pathExists } from "../../src/state/path_exists.ts";

const AGENT_FILE = `version: 1
agents:
  keeper:
    workspace: none
`;

Deno.test("kept home: a second bottle of the agent has the first's Claude Code state; --fresh does not", async (t) => {
  const key = `sk-ant-api03-${crypto.randomUUID().replaceAll("-", "")}canaryAA`;
  await using be = await bottleEnv({ ANTHROPIC_API_KEY: key });
  const cwd = await projectWith(be, AGENT_FILE);
  // One kept home per agent and project: this project's is the only one there.
  const keptIn = `${be.stateRoot}/homes/keeper`;
  const keptFile = async () => {
    const files = (await Array.fromAsync(Deno.readDir(keptIn))).map((e) => e.name);
    assert.equal(files.length, 1, files.join(" "));
    return `${keptIn}/${files[0]}`;
  };
  const agent = (n: string) => `bottle-keeper-${n}-agent`;
  try {
    await t.step(
      "the first bottle's Claude Code state is saved at stop, without credentials",
      async () => {
        const r = await bottle(["start", "keeper", "--detach", "--name", "h1"], be.env, { cwd });
        assert.equal(r.code, 0, r.stderr);
        const write = await inContainer(
          agent("h1"),
          `mkdir -p ~/.claude/projects/-workspace && printf '%s' '{"hasCompletedOnboarding":true,"projects":{"/workspace":{"hasTrustDialogAccepted":true}}}' > ~/.claude.json && printf '{"theme":"dark","hooks":{"Stop":[]}}' > ~/.claude/settings.json && printf 'login' > ~/.claude/.credentials.json && printf '%s' "$ANTHROPIC_API_KEY" > ~/.claude/projects/-workspace/seen-key`,
        );
        assert.equal(write.code, 0, write.stderr);
        assert.equal(await pathExists(keptIn), false);
        const stop = await bottle(["stop", "keeper-h1"], be.env);
        assert.equal(stop.code, 0, stop.stderr);
        const kept = await keptFile();
        const files = readTarFiles(await Deno.readFile(kept));
        assert.deepEqual([...files.keys()].sort(), [
          ".claude.json",
          ".claude/projects/-workspace/seen-key",
          ".claude/settings.json",
        ]);
        const bytes = new TextDecoder().decode(await Deno.readFile(kept));
        // The bottle only ever saw a placeholder: the real key is in nothing kept.
        assert.ok(!bytes.includes(key), "the real API key is in the kept home");
        assert.match(
          new TextDecoder().decode(files.get(".claude/projects/-workspace/seen-key")),
          /^sk-ant-api03-/,
        );
        assert.equal((await Deno.stat(kept)).mode! & 0o777, 0o600);
        // Settings come back as preferences only: the hook the session set is not kept.
        assert.equal(
          new TextDecoder().decode(files.get(".claude/settings.json")).trim(),
          '{\n  "theme": "dark"\n}',
        );
      },
    );

    await t.step("the next bottle starts with it", async () => {
      const r = await bottle(["start", "keeper", "--detach", "--name", "h2"], be.env, { cwd });
      assert.equal(r.code, 0, r.stderr);
      const config = await inContainer(agent("h2"), "cat ~/.claude.json");
      assert.equal(JSON.parse(config.stdout).hasCompletedOnboarding, true, config.stderr);
      const settings = await inContainer(agent("h2"), "cat ~/.claude/settings.json");
      assert.deepEqual(JSON.parse(settings.stdout), { theme: "dark" });
      const seen = await inContainer(agent("h2"), "ls -a ~/.claude");
      assert.ok(!seen.stdout.includes(".credentials.json"));
      const owner = await inContainer(
        agent("h2"),
        "stat -c %U ~/.claude.json ~/.claude/settings.json",
      );
      assert.equal(owner.stdout, "agent\nagent\n");
    });

    await t.step("--fresh starts without it, and the kept home stays", async () => {
      const r = await bottle(["start", "keeper", "--detach", "--fresh", "--name", "h3"], be.env, {
        cwd,
      });
      assert.equal(r.code, 0, r.stderr);
      const seen = await inContainer(
        agent("h3"),
        "ls -a ~; test -e ~/.claude/settings.json && echo KEPT",
      );
      assert.ok(!seen.stdout.includes("KEPT"), seen.stdout);
      assert.ok(await pathExists(await keptFile()));
    });

    await t.step("cleanup --homes removes it", async () => {
      for (const n of ["h2", "h3"]) {
        assert.equal((await bottle(["stop", `keeper-${n}`], be.env)).code, 0);
      }
      const dry = await bottle(["cleanup", "--homes", "--dry-run"], be.env);
      assert.match(dry.stdout, /would remove the kept homes of keeper/);
      assert.ok(await pathExists(keptIn));
      const c = await bottle(["cleanup", "--homes"], be.env);
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stdout, /removed the kept homes of keeper/);
      assert.equal(await pathExists(keptIn), false);
    });
  } finally {
    for (const n of ["h1", "h2", "h3"]) await bottle(["stop", `keeper-${n}`], be.env);
  }
});
