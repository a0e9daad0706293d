/**
 * What `bottle build` shows while an image builds and when it fails, on the
 * real engine: plain lines (start, each step, end) off a terminal, one line
 * rewritten in place on one, and a failure that names the image, shows the
 * end of its log (terminal-safe) and where the whole log is kept.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { bottle, bottleEnv, MAIN, projectWith } from "../helpers/bottle_env.ts";
import { run } from "../../src/proc/runner.ts";

const AGENT_FILE = `version: 1
agents:
  broken:
    anthropic: none
    image: { dockerfile: ./broken.Dockerfile }
  fine:
    anthropic: none
    image: { dockerfile: ./fine.Dockerfile }
`;

/** Echoes a window-title escape: a build's output reaches the terminal only made safe. */
const BROKEN = `FROM debian:bookworm-slim
RUN sleep 2 && echo hello && printf '\\033]0;PWNED\\007\\n' && exit 3
`;

Deno.test("build progress: a failed build names the image, shows its end and keeps the whole log", async (t) => {
  await using be = await bottleEnv();
  const cwd = await projectWith(be, AGENT_FILE);
  await Deno.writeTextFile(join(cwd, "broken.Dockerfile"), BROKEN);
  const logDir = join(be.stateRoot, "build-logs");

  await t.step("off a terminal: plain lines, the tail and `full log: PATH`", async () => {
    // Twelve older logs: only the newest ten logs are kept.
    await Deno.mkdir(logDir, { recursive: true });
    const old = new Date(Date.now() - 3_600_000);
    for (let i = 0; i < 12; i++) {
      const p = join(logDir, `old-${String(i).padStart(2, "0")}.log`);
      await Deno.writeTextFile(p, "old\n");
      await Deno.utime(p, old, new Date(old.getTime() + i * 1000));
    }

    const containers = async () =>
      (await run(["docker", "ps", "-aq", "--no-trunc"])).stdout.split("\n").filter(Boolean);
    const before = new Set(await containers());
    const r = await bottle(["build", "broken"], be.env, { cwd });
    assert.notEqual(r.code, 0, r.stderr);
    // The failed step's container goes with the build (the legacy builder keeps it otherwise).
    assert.deepEqual((await containers()).filter((c) => !before.has(c)), []);
    assert.ok(!r.stderr.includes("\r"), `no in-place line off a terminal:\n${r.stderr}`);
    assert.match(r.stderr, /^bottle: building agent image bottle\/agent-broken:[0-9a-f]{16}$/m);
    assert.match(r.stderr, /^bottle: building agent image: step \d+\/\d+: RUN sleep 2 && echo/m);
    assert.match(r.stderr, /Cannot build the agent image bottle\/agent-broken:[0-9a-f]{16}: /);
    assert.match(r.stderr, /exited with code \d+; its last lines:\n/);
    assert.match(r.stderr, /^ {2}hello$/m);
    // The escape is shown, not acted on.
    assert.ok(!r.stderr.includes("\x1b"), r.stderr);
    assert.match(r.stderr, /\\x1b\]0;PWNED\\x07/);

    const path = /^full log: (.+)$/m.exec(r.stderr)?.[1];
    assert.ok(path, r.stderr);
    assert.equal(dirname(path), logDir);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(logDir)).mode! & 0o777, 0o700);
    const log = await Deno.readTextFile(path);
    assert.match(log, /FROM debian:bookworm-slim/);
    assert.match(log, /^hello$/m);
    assert.ok(log.includes("\x1b]0;PWNED\x07"), "the log file keeps the build's own bytes");
    // The whole log: everything the error shows of it is in it, and more.
    const shown = r.stderr.split("; its last lines:\n")[1]!.split("\nfull log: ")[0]!
      .split("\n").map((l) => l.slice(2)).filter((l) => l && !l.includes("\\x"));
    for (const l of shown) assert.ok(log.includes(l), `"${l}" is in the log`);
    assert.ok(log.trimEnd().split("\n").length > shown.length);

    const kept = [...Deno.readDirSync(logDir)].map((e) => e.name).sort();
    assert.equal(kept.length, 10, kept.join(" "));
    assert.ok(kept.includes(path.slice(logDir.length + 1)));
    assert.ok(!kept.includes("old-00.log") && !kept.includes("old-02.log"));
  });

  await t.step(
    "on a terminal: one line rewritten in place, ticking, then a plain end",
    async () => {
      // util-linux `script` gives the CLI a terminal.
      const cmd = `${Deno.execPath()} run --allow-all ${MAIN} build broken`;
      const out = await new Deno.Command("script", {
        args: ["-qec", cmd, "/dev/null"],
        cwd,
        env: { ...be.env, TERM: "xterm" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.notEqual(out.code, 0, text);
      // Each redraw starts with `\r` and clear-to-end-of-line; the last ends with a newline.
      const frames = text.split("\r\x1b[K").slice(1);
      assert.ok(frames.length >= 3, JSON.stringify(text));
      assert.match(
        frames[0]!,
        /^bottle: building agent image bottle\/agent-broken:[0-9a-f]{16} \(0 s\)$/,
      );
      const steps = frames.slice(1);
      assert.ok(
        steps.some((f) => /^bottle: building agent image: step \d+\/\d+: RUN sleep 2/.test(f)),
      );
      // The build sleeps 2 s with no output: the line is redrawn with the time meanwhile.
      assert.ok(steps.some((f) => /: RUN sleep 2.* \([12] s\)$/.test(f)), JSON.stringify(frames));
      // Ended by a newline; the failure follows on lines of its own.
      assert.match(
        frames.at(-1)!,
        /\(\d+ s\)\r?\nbottle: building agent image bottle\/agent-broken:[0-9a-f]{16}: failed after \d+ s\r?\n/,
      );
      assert.match(text, /^full log: \S+\.log\r?$/m);
      assert.ok(!text.includes("\x1b]0;PWNED"), "the build's escape is not passed through");
    },
  );
});

Deno.test("build progress: a build that succeeds, off a terminal, says each step in plain lines", async () => {
  await using be = await bottleEnv();
  const cwd = await projectWith(be, AGENT_FILE);
  // A new Dockerfile each run: the image is not cached, so it builds.
  await Deno.writeTextFile(
    join(cwd, "fine.Dockerfile"),
    `# ${crypto.randomUUID()}\nFROM debian:bookworm-slim\nRUN echo ok\n`,
  );
  const r = await bottle(["build", "fine"], be.env, { cwd });
  const tags = r.stdout.trim().split("\n").filter(Boolean);
  try {
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stderr.includes("\r"), r.stderr);
    assert.match(r.stderr, /^bottle: building agent image bottle\/agent-fine:[0-9a-f]{16}$/m);
    assert.match(
      r.stderr,
      /^bottle: building agent image: step 1\/\d+: FROM debian:bookworm-slim$/m,
    );
    assert.match(r.stderr, /^bottle: building agent image: step 2\/\d+: RUN echo ok$/m);
    assert.match(r.stderr, /^bottle: built agent image bottle\/agent-fine:[0-9a-f]{16} in \d+/m);
    // The build's own output stays in its log.
    assert.doesNotMatch(r.stderr, /^(bottle: )? *ok$/m);
    const logs = [...Deno.readDirSync(join(be.stateRoot, "build-logs"))].map((e) => e.name);
    assert.ok(logs.some((n) => n.startsWith("bottle_agent-fine_")), logs.join(" "));
  } finally {
    // The agent and run images are this test's own; the bundle image is shared.
    // The run image first: the agent image cannot go while an image is made from it.
    const agent = await run([
      "docker",
      "images",
      "--format",
      "{{.Repository}}:{{.Tag}}",
      "bottle/agent-fine",
    ]);
    const own = [...(tags[2] ? [tags[2]] : []), ...agent.stdout.split("\n").filter(Boolean)];
    if (own.length) await run(["docker", "rmi", ...own], { check: false });
  }
});
