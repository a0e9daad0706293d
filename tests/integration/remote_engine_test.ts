/**
 * A bottle on an engine that is not this machine (DOCKER_HOST=tcp://…):
 * nothing may rely on sharing this host's filesystem. The second engine is
 * a dockerd in a privileged container, reached over TCP. start, exec, logs,
 * stop and cleanup all work through the engine alone: the bundle's config
 * arrives by copy, its audit log is read back through the engine, and no
 * container of the bottle has a bind mount.
 */
import assert from "node:assert/strict";
import { bottle, bottleEnv, interruptAt, projectWith } from "../helpers/bottle_env.ts";
import { startRemoteEngine } from "../helpers/remote_engine.ts";
import { run } from "../../src/proc/runner.ts";
import { callFromBottle, firstPendingId } from "../helpers/supervise.ts";

const AGENT_FILE = `version: 1
agents:
  far:
    anthropic: none
    allowed_domains: [allowed.test]
  asker:
    anthropic: none
    supervise: { timeout: 5m }
  # A session that pushes and ends: what it pushed must come back at teardown.
  pusher:
    anthropic: none
    command: [sh, -c, "cd /workspace && git checkout -qb fg && git commit -q --allow-empty -m fg && git push -q origin fg"]
`;

Deno.test("remote engine: start, exec, logs, stop and cleanup over DOCKER_HOST=tcp://", async (t) => {
  await using be = await bottleEnv();
  const cwd = await projectWith(be, AGENT_FILE);
  const build = await bottle(["build", "far"], be.env, { cwd });
  assert.equal(build.code, 0, build.stderr);
  const images = build.stdout.trim().split("\n");
  assert.equal(images.length, 3);
  await using remote = await startRemoteEngine(images);
  const env = { ...be.env, DOCKER_HOST: remote.host };
  const labelledThere = async (id: string) => {
    const ps = await remote.docker([
      "ps",
      "-a",
      "--filter",
      `label=bottle.id=${id}`,
      "--format",
      "{{.Names}}",
    ]);
    const nets = await remote.docker([
      "network",
      "ls",
      "--filter",
      `label=bottle.id=${id}`,
      "--format",
      "{{.Name}}",
    ]);
    const vols = await remote.docker([
      "volume",
      "ls",
      "--filter",
      `label=bottle.id=${id}`,
      "--format",
      "{{.Name}}",
    ]);
    return [ps.stdout, nets.stdout, vols.stdout].join("").split("\n").filter(Boolean).sort();
  };

  try {
    await t.step("start runs the bottle on the remote engine, with no bind mount", async () => {
      const r = await bottle(["start", "far", "--detach", "--name", "r1"], env, { cwd });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await labelledThere("far-r1"), [
        "bottle-far-r1-agent",
        "bottle-far-r1-bundle",
        "bottle-far-r1-outbound",
        "bottle-far-r1-sockets",
      ]);
      const local = await bottle(["ls", "--json"], be.env);
      assert.deepEqual(JSON.parse(local.stdout), [], "the bottle is on this host's engine too");
      // The config and CA keys went to the bundle by copy: the host keeps the record only.
      const state = [...Deno.readDirSync(`${be.stateRoot}/bottles/far-r1`)].map((e) => e.name);
      assert.deepEqual(state, ["bottle.json"]);
      for (const c of ["bottle-far-r1-agent", "bottle-far-r1-bundle"]) {
        const mounts = await remote.docker(["inspect", "--format", "{{json .Mounts}}", c]);
        const types = (JSON.parse(mounts.stdout) as { Type: string }[]).map((m) => m.Type);
        assert.ok(!types.includes("bind"), `${c} has a bind mount: ${mounts.stdout}`);
      }
    });

    await t.step("exec runs in the remote agent; ls sees it running", async () => {
      const r = await bottle(["exec", "far-r1", "--", "sh", "-c", "id -un; hostname"], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^agent\n/);
      const ls = JSON.parse((await bottle(["ls", "--json"], env)).stdout) as {
        name: string;
        state: string;
      }[];
      assert.deepEqual(ls.map((b) => [b.name, b.state]), [["far-r1", "running"]]);
    });

    await t.step("logs are read back through the engine", async () => {
      const denied = await bottle([
        "exec",
        "far-r1",
        "--",
        "curl",
        "-sS",
        "-m",
        "10",
        "https://denied.test/",
      ], env);
      assert.notEqual(denied.code, 0);
      assert.match(denied.stderr, /403/);
      const logs = await bottle(["logs", "far-r1"], env);
      assert.equal(logs.code, 0, logs.stderr);
      assert.match(logs.stdout, /CONNECT denied\.test 403 denied/);
    });

    await t.step("stop removes everything there and keeps the log here", async () => {
      const r = await bottle(["stop", "far-r1"], env);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await labelledThere("far-r1"), []);
      const kept = await bottle(["logs", "far-r1"], env);
      assert.match(kept.stdout, /denied\.test 403 denied/);
    });

    await t.step("cleanup finds and removes what a killed launch left there", async () => {
      const r = await interruptAt(
        ["start", "far", "--detach", "--name", "r2"],
        env,
        cwd,
        /provisioning/,
        "SIGKILL",
      );
      assert.equal(r.code, 137);
      assert.ok((await labelledThere("far-r2")).length > 0);
      const c = await bottle(["cleanup"], env);
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stdout, /removed far-r2 \(docker\)/);
      assert.deepEqual(await labelledThere("far-r2"), []);
    });

    await t.step("the workspace is copied in; pushes come back with fetch and stop", async () => {
      const git = (args: string[]) => run(["git", "-C", cwd, ...args]);
      await git(["init", "--quiet", "--initial-branch=main"]);
      await git(["config", "user.name", "U"]);
      await git(["config", "user.email", "u@example.com"]);
      await git(["add", "bottle.yaml"]);
      await git(["commit", "--quiet", "-m", "first"]);
      await git(["branch", "other"]);
      await Deno.writeTextFile(`${cwd}/wip.txt`, "uncommitted\n");
      const start = await bottle(["start", "far", "--detach", "--name", "w1"], env, { cwd });
      assert.equal(start.code, 0, start.stderr);
      const sh = (script: string) =>
        bottle(["exec", "far-w1", "--", "sh", "-c", `cd /workspace && { ${script}; } 2>&1`], env);
      const view = await sh("git branch --format='%(refname:short)' && cat wip.txt");
      assert.equal(view.code, 0, view.stdout);
      assert.deepEqual(view.stdout.trim().split("\n"), ["main", "other", "uncommitted"]);
      const mounts = await remote.docker([
        "inspect",
        "--format",
        "{{json .Mounts}}",
        "bottle-far-w1-bundle",
      ]);
      assert.ok(!mounts.stdout.includes('"bind"'), mounts.stdout);

      const push = await sh(
        // `fresh` is a new branch at a commit the host has: nothing to bring but the branch.
        "echo one > a.txt && git add a.txt && git commit -qm one && git push -q origin other:fresh && git push origin main && git rev-parse HEAD",
      );
      assert.equal(push.code, 0, push.stdout);
      assert.match(push.stdout, /kept as bottle\/far-w1\/main: `bottle fetch far-w1`/);
      const tip = push.stdout.trim().split("\n").at(-1)!;
      const landed = () =>
        run([
          "git",
          "-C",
          cwd,
          "for-each-ref",
          "--format=%(refname:short) %(objectname)",
          "refs/heads/bottle/",
        ])
          .then((r) => r.stdout.trim());
      assert.equal(await landed(), "", "a push reached this host's repository without fetch");

      const fetched = await bottle(["fetch", "far-w1"], env);
      assert.equal(fetched.code, 0, fetched.stderr);
      const first = (await git(["rev-parse", "main"])).stdout.trim();
      assert.equal(fetched.stdout.trim(), "bottle/far-w1/fresh\nbottle/far-w1/main");
      assert.equal(await landed(), `bottle/far-w1/fresh ${first}\nbottle/far-w1/main ${tip}`);
      // Only the bottle's own branch: the user's main, index and working tree are as they were.
      assert.equal((await git(["log", "-1", "--format=%s", "main"])).stdout.trim(), "first");
      assert.equal((await git(["status", "--porcelain"])).stdout.trim(), "?? wip.txt");

      const second = await sh(
        "git checkout -qb later && echo two > b.txt && git add b.txt && git commit -qm two && git push -q origin later && git rev-parse HEAD",
      );
      assert.equal(second.code, 0, second.stdout);
      // The user moved the bottle's branch here: the fetch cannot update it
      // without forcing, so stop keeps the volume (and the record) rather than lose the push.
      const mine = (await git(["commit-tree", "-p", "main", "-m", "mine", "main^{tree}"])).stdout
        .trim();
      await git(["update-ref", "refs/heads/bottle/far-w1/main", mine]);
      const refused = await bottle(["stop", "far-w1"], env);
      assert.notEqual(refused.code, 0, "stop removed pushes it could not fetch");
      assert.match(refused.stderr, /kept in volume bottle-far-w1-workspace/);
      assert.deepEqual(await labelledThere("far-w1"), ["bottle-far-w1-workspace"]);
      await git(["update-ref", "-d", "refs/heads/bottle/far-w1/main"]);
      const stop = await bottle(["stop", "far-w1"], env);
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal(
        await landed(),
        [
          `bottle/far-w1/fresh ${first}`,
          `bottle/far-w1/later ${second.stdout.trim().split("\n").at(-1)}`,
          `bottle/far-w1/main ${tip}`,
        ].join("\n"),
      );
      assert.deepEqual(await labelledThere("far-w1"), []);
    });

    await t.step(
      "supervise's queue is in the bundle there, read and answered through the engine",
      async () => {
        const r = await bottle(
          ["start", "asker", "--detach", "--name", "q1", "--workspace", "none"],
          env,
          {
            cwd,
          },
        );
        assert.equal(r.code, 0, r.stderr);
        const mounts = await remote.docker([
          "inspect",
          "--format",
          "{{json .Mounts}}",
          "bottle-asker-q1-bundle",
        ]);
        assert.ok(!mounts.stdout.includes('"bind"'), mounts.stdout);
        const ask = callFromBottle(
          "asker-q1",
          env,
          "http://127.0.0.1:8090/mcp",
          "request_approval",
          {
            action: "from afar",
          },
        );
        const id = await firstPendingId(env);
        const ok = await bottle(["supervise", "--approve", id, "-m", "from here"], env);
        assert.equal(ok.code, 0, ok.stderr);
        assert.match((await ask).stdout, /Approved by the human: from here/);
        const twice = await bottle(["supervise", "--deny", id], env);
        assert.equal(twice.code, 2);
        assert.match(twice.stderr, /answered already/);
        const stop = await bottle(["stop", "asker-q1"], env);
        assert.equal(stop.code, 0, stop.stderr);
        assert.deepEqual(await labelledThere("asker-q1"), []);
      },
    );

    await t.step("a session's pushes come back when it ends, before its volume goes", async () => {
      const r = await bottle(["start", "pusher", "--name", "fg1"], env, { cwd });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /bottle\/pusher-fg1\/fg is in the host repository/);
      const fg = await run(["git", "-C", cwd, "log", "-1", "--format=%s", "bottle/pusher-fg1/fg"]);
      assert.equal(fg.stdout.trim(), "fg");
      assert.deepEqual(await labelledThere("pusher-fg1"), []);
    });
  } finally {
    await bottle(["cleanup", "--all"], env);
  }
});
