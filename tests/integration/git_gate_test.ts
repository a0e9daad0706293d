/**
 * The workspace and the git gate, end to end on the real engine with real
 * git: a bottle started inside a repository gets a clone of it (every
 * branch, the uncommitted changes as one commit); pushes the policy allows
 * land in the host repository as bottle/<name>/<branch> before `git push`
 * returns, and nothing else of the host repository changes (working tree,
 * index, HEAD, the user's branches); every rule rejects with its name; the
 * agent cannot read the gate's mirror, config or hooks; two bottles of one
 * repository never clobber each other; and `stop` keeps what was pushed.
 */
import assert from "node:assert/strict";
import { bottle, bottleEnv, labelled, NOTHING } from "../helpers/bottle_env.ts";
import { run } from "../../src/proc/runner.ts";

const SECRET = "sk-ant-api03-the-real-key-of-this-test-0123456789abcdef";

async function git(dir: string, args: string[]): Promise<string> {
  return (await run(["git", "-C", dir, ...args], {
    env: { GIT_AUTHOR_DATE: "2026-01-01T00:00:00Z", GIT_COMMITTER_DATE: "2026-01-01T00:00:00Z" },
  })).stdout.trim();
}

/** A repository with two branches, a staged and an unstaged change, and an untracked file. */
async function userRepo(home: string, agentFile: string): Promise<string> {
  const dir = `${home}/repo`;
  await Deno.mkdir(dir);
  await git(dir, ["init", "--quiet", "--initial-branch=main"]);
  await git(dir, ["config", "user.name", "Ada Host"]);
  await git(dir, ["config", "user.email", "ada@example.com"]);
  await Deno.writeTextFile(`${dir}/bottle.yaml`, agentFile);
  await Deno.writeTextFile(`${dir}/a.txt`, "one\n");
  await Deno.writeTextFile(`${dir}/.gitignore`, "ignored.txt\n");
  await git(dir, ["add", "."]);
  await git(dir, ["commit", "--quiet", "-m", "first"]);
  await git(dir, ["branch", "feature"]);
  await Deno.writeTextFile(`${dir}/a.txt`, "one\ntwo\n");
  await Deno.writeTextFile(`${dir}/staged.txt`, "staged\n");
  await git(dir, ["add", "staged.txt"]);
  await Deno.writeTextFile(`${dir}/new.txt`, "untracked\n");
  await Deno.writeTextFile(`${dir}/ignored.txt`, "not for the bottle\n");
  return dir;
}

/** What of the host repository the gate must never touch. */
async function untouched(dir: string) {
  return {
    status: await git(dir, ["status", "--porcelain=v1", "--untracked-files=all"]),
    index: await Deno.readFile(`${dir}/.git/index`).then((b) => b.join(",")),
    head: await Deno.readTextFile(`${dir}/.git/HEAD`),
    branches: await git(dir, [
      "for-each-ref",
      "--format=%(refname) %(objectname)",
      "refs/heads/main",
      "refs/heads/feature",
    ]),
    files: await Promise.all(
      ["a.txt", "staged.txt", "new.txt"].map((f) => Deno.readTextFile(`${dir}/${f}`)),
    ),
  };
}

const AGENT_FILE = `version: 1
agents:
  coder:
    anthropic: { api_key: { env: TEST_ANTHROPIC_KEY } }
    push:
      max_size: 64k
      hooks:
        - 'while read old new ref; do if [ "$(git log -1 --format=%s "$new")" = WIP ]; then echo "no WIP commits on $ref"; exit 1; fi; done'
`;

Deno.test("git gate: the host repository in, pushes out under the bottle's own branches", async () => {
  await using be = await bottleEnv({ TEST_ANTHROPIC_KEY: SECRET });
  const repo = await userRepo(be.env.HOME!, AGENT_FILE);
  const before = await untouched(repo);
  const start = await bottle(["start", "coder", "--detach", "--name", "gate1"], be.env, {
    cwd: repo,
  });
  assert.equal(start.code, 0, start.stderr);
  const name = "coder-gate1";
  const sh = (script: string) =>
    bottle(["exec", name, "--", "sh", "-c", `cd /workspace && ${script}`], be.env);
  try {
    // The clone: every branch, the current one checked out, the changes carried as one commit.
    const view = await sh(
      "git branch --format='%(refname:short)' && git log --format=%s && cat a.txt staged.txt new.txt && ls && git status --porcelain && git config user.email",
    );
    assert.equal(view.code, 0, view.stderr);
    const [b1, b2, carried, first, ...rest] = view.stdout.trim().split("\n");
    assert.deepEqual([b1, b2], ["feature", "main"]);
    assert.match(carried!, /^bottle: uncommitted changes in .*repo when the bottle started$/);
    assert.equal(first, "first");
    assert.deepEqual(rest.slice(0, 4), ["one", "two", "staged", "untracked"]);
    assert.ok(!rest.includes("ignored.txt"), "an ignored file reached the bottle");
    assert.equal(rest.at(-1), "ada@example.com");
    const ownHead = await git(repo, ["rev-parse", "main"]);
    assert.equal(
      (await sh("git rev-parse main~1")).stdout.trim(),
      ownHead,
      "the carried commit's parent is the host's HEAD",
    );

    // An allowed push lands before `git push` returns.
    const push = await sh(
      "echo three >> a.txt && git commit --quiet -am three && git push origin main 2>&1 && git rev-parse HEAD",
    );
    assert.equal(push.code, 0, push.stdout + push.stderr);
    const firstPush = push.stdout.trim().split("\n").at(-1)!;
    assert.match(push.stdout, /landed in the host repository as bottle\/coder-gate1\/main/);
    assert.equal(await git(repo, ["rev-parse", "refs/heads/bottle/coder-gate1/main"]), firstPush);
    assert.deepEqual(await untouched(repo), before, "the push changed the host repository's state");
    // The user's own housekeeping (refs packed, the loose ones pruned) leaves
    // the bottle's landing dir in place under its mount: the next push lands too.
    await git(repo, ["pack-refs", "--all", "--prune"]);
    const again = await sh(
      "git commit --quiet --allow-empty -m again && git push origin main 2>&1 && git rev-parse HEAD",
    );
    assert.equal(again.code, 0, again.stdout);
    assert.match(again.stdout, /landed in the host repository as bottle\/coder-gate1\/main/);
    const pushed = again.stdout.trim().split("\n").at(-1)!;
    assert.equal(await git(repo, ["rev-parse", "refs/heads/bottle/coder-gate1/main"]), pushed);

    // The user built on the bottle's branch here: a push that cannot land is
    // refused, not accepted and lost.
    const mine = await git(repo, ["commit-tree", "-p", pushed, "-m", "mine", `${pushed}^{tree}`]);
    await git(repo, ["update-ref", "refs/heads/bottle/coder-gate1/main", mine]);
    const diverged = await sh(
      "git commit --quiet --allow-empty -m other && git push origin main 2>&1",
    );
    assert.notEqual(diverged.code, 0, diverged.stdout);
    assert.match(
      diverged.stdout,
      /\[landing\] bottle\/coder-gate1\/main moved on in the host repository/,
    );
    assert.equal(await git(repo, ["rev-parse", "refs/heads/bottle/coder-gate1/main"]), mine);
    await git(repo, ["update-ref", "refs/heads/bottle/coder-gate1/main", pushed]);
    await sh("git reset --quiet --hard HEAD~1");

    // Each rule rejects with its name, and nothing lands.
    const rejected: [string, string, RegExp][] = [
      [
        "force",
        "git reset --quiet --hard HEAD~1 && git commit --quiet --allow-empty -m other && git push --force origin main",
        /\[non-fast-forward\] refs\/heads\/main/,
      ],
      ["delete", "git push origin :feature", /\[deletion\] refs\/heads\/feature/],
      ["tag", "git tag v1 && git push origin v1", /\[tags\] refs\/tags\/v1/],
      [
        "notes",
        "git notes add -m n && git push origin refs/notes/commits",
        /\[namespace\] refs\/notes\/commits/,
      ],
      [
        "secret format",
        "git checkout --quiet -B s1 feature && echo AKIAIOSFODNN7EXAMPLE > k.txt && git add k.txt && git commit --quiet -m k && git push origin s1",
        /\[secret\] commit [0-9a-f]{12} adds an AWS access key in k\.txt \(line 1\)/,
      ],
      [
        "own secret",
        `git checkout --quiet -B s2 feature && echo 'key: ${SECRET}' > cfg.yaml && git add cfg.yaml && git commit --quiet -m c && git push origin s2`,
        /\[secret\] commit [0-9a-f]{12} adds a secret of this bottle in cfg\.yaml/,
      ],
      [
        "size",
        "git checkout --quiet -B big feature && head -c 300000 /dev/urandom > blob.bin && git add blob.bin && git commit --quiet -m big && git push origin big",
        /\[size\] the push adds .* more than the limit of 64 KiB/,
      ],
      [
        "hook",
        "git checkout --quiet -B wip feature && git commit --quiet --allow-empty -m WIP && git push origin wip",
        /\[hook\] hook 1 .* rejected the push: no WIP commits on refs\/heads\/wip/,
      ],
    ];
    for (const [what, script, rule] of rejected) {
      const r = await sh(`${script} 2>&1`);
      assert.notEqual(r.code, 0, `${what}: the push was accepted\n${r.stdout}`);
      assert.match(r.stdout, rule, what);
      assert.match(r.stdout, /pre-receive hook declined/, what);
      assert.doesNotMatch(r.stdout, new RegExp(SECRET), `${what}: the secret was echoed`);
    }
    const landed = await git(repo, ["for-each-ref", "--format=%(refname)", "refs/heads/bottle/"]);
    assert.equal(landed, "refs/heads/bottle/coder-gate1/main", "a rejected push landed");
    assert.equal(await git(repo, ["rev-parse", "refs/heads/bottle/coder-gate1/main"]), pushed);
    assert.deepEqual(await untouched(repo), before);

    // The agent reaches the gate only as git's smart protocol: no file of the mirror.
    const probe = await sh(
      [
        "info/refs?service=git-upload-pack",
        "config",
        "hooks/pre-receive",
        "HEAD",
        "objects/info/alternates",
        "info/refs",
      ].map((p) =>
        `curl -s -o /dev/null -w '%{http_code}\\n' 'http://127.0.0.1:8080/workspace.git/${p}'`
      ).join(" && "),
    );
    assert.deepEqual(probe.stdout.trim().split("\n"), ["200", "404", "404", "404", "404", "403"]);
    // The bundle itself (its daemons parse the agent's traffic) can write this
    // bottle's own refs of the host repository, nothing else (not even objects).
    const inBundle = await run([
      "docker",
      "exec",
      `bottle-${name}-bundle`,
      "sh",
      "-c",
      [
        "hooks/pre-commit",
        "config",
        "refs/heads/main",
        "refs/heads/bottle/other-bottle",
        "objects/bottle-probe",
        `refs/heads/bottle/${name}/probe`,
      ].map((f) =>
        `if touch /run/bottle/host-repo/${f} 2>/dev/null; then rm /run/bottle/host-repo/${f}; echo ${f}=written; else echo ${f}=refused; fi`
      ).join("; "),
    ]);
    assert.deepEqual(inBundle.stdout.trim().split("\n"), [
      "hooks/pre-commit=refused",
      "config=refused",
      "refs/heads/main=refused",
      "refs/heads/bottle/other-bottle=refused",
      "objects/bottle-probe=refused",
      `refs/heads/bottle/${name}/probe=written`,
    ]);
    // Nor the host repository's path, or the bundle's files.
    const reach = await sh("ls /run/bottle/host-repo /var/lib/bottle/git 2>&1; echo done");
    assert.match(reach.stdout, /No such file or directory[\s\S]*No such file or directory/);

    // Every push and its verdict is in the audit log, and ls shows what landed.
    const logs = await bottle(["logs", name, "--json"], be.env);
    const events = logs.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((e) =>
      e.daemon === "git-gate"
    );
    assert.deepEqual(
      events.map((e) => e.decision),
      ["accepted", "landed", "accepted", "landed", "rejected", ...rejected.map(() => "rejected")],
    );
    assert.ok(!logs.stdout.includes(SECRET));
    const ls = await bottle(["ls", "--json"], be.env);
    assert.deepEqual(JSON.parse(ls.stdout)[0].pushed, ["bottle/coder-gate1/main"]);
  } finally {
    const stop = await bottle(["stop", name], be.env);
    assert.equal(stop.code, 0, stop.stderr);
  }
  assert.deepEqual(await labelled(`bottle.id=${name}`), NOTHING);
  // stop keeps what was pushed, with its objects now the repository's own:
  // the bottle's store is no longer borrowed, and nothing is missing.
  assert.equal(
    await git(repo, ["for-each-ref", "--format=%(refname)", "refs/heads/bottle/"]),
    "refs/heads/bottle/coder-gate1/main",
  );
  assert.deepEqual(await untouched(repo), before);
  const alternates = await Deno.readTextFile(`${repo}/.git/objects/info/alternates`).catch(() =>
    ""
  );
  assert.doesNotMatch(alternates, /landing-objects/);
  assert.equal(await git(repo, ["fsck", "--connectivity-only", "--no-dangling"]), "");
  assert.equal(await git(repo, ["show", "-s", "--format=%s", "bottle/coder-gate1/main"]), "again");
});

Deno.test("git gate: two bottles of one repository push the same branch without clobbering", async () => {
  await using be = await bottleEnv({ TEST_ANTHROPIC_KEY: SECRET });
  const repo = await userRepo(be.env.HOME!, AGENT_FILE);
  const names = ["coder-twin1", "coder-twin2"];
  try {
    const starts = await Promise.all(
      names.map((n) =>
        bottle(["start", "coder", "--detach", "--name", n.slice(6)], be.env, { cwd: repo })
      ),
    );
    for (const s of starts) assert.equal(s.code, 0, s.stderr);
    const tips = await Promise.all(names.map(async (n) => {
      const r = await bottle([
        "exec",
        n,
        "--",
        "sh",
        "-c",
        `cd /workspace && git checkout --quiet -b work && echo ${n} > who.txt && git add who.txt && git commit --quiet -m ${n} && git push --quiet origin work && git rev-parse HEAD`,
      ], be.env);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    }));
    assert.notEqual(tips[0], tips[1]);
    for (const [i, n] of names.entries()) {
      assert.equal(await git(repo, ["rev-parse", `refs/heads/bottle/${n}/work`]), tips[i]);
      assert.equal(await git(repo, ["show", `bottle/${n}/work:who.txt`]), n);
    }
    // The other bottle's branches are not in a bottle's clone.
    const seen = await bottle(
      ["exec", names[0]!, "--", "git", "-C", "/workspace", "ls-remote", "origin"],
      be.env,
    );
    assert.doesNotMatch(seen.stdout, /bottle\//);
    // Nor can it have them by id, in any protocol version (v2 would serve any
    // object the mirror can read, and it borrows the host repository's).
    const byId = await bottle([
      "exec",
      names[0]!,
      "--",
      "sh",
      "-c",
      `cd /workspace && git -c protocol.version=2 fetch -q origin ${
        tips[0]
      } && echo own-ok; git -c protocol.version=2 fetch -q origin ${
        tips[1]
      } 2>&1; git cat-file -t ${tips[1]} 2>&1 || echo other-absent`,
    ], be.env);
    assert.match(byId.stdout, /^own-ok$/m);
    assert.match(byId.stdout, /not our ref|unadvertised object/);
    assert.match(byId.stdout, /^other-absent$/m);
    // Nor by a push that names it without bringing it (a raw receive-pack
    // request with an empty pack): its own tip, the positive control, is taken.
    const rawPush = async (sha: string, ref: string) => {
      const line = `${"0".repeat(40)} ${sha} ${ref}\0report-status\n`;
      const pkt = (line.length + 4).toString(16).padStart(4, "0") + line;
      const octal = (bytes: number[]) =>
        bytes.map((b) => "\\" + b.toString(8).padStart(3, "0")).join("");
      const emptyPack = [..."PACK"].map((c) => c.charCodeAt(0)).concat([0, 0, 0, 2, 0, 0, 0, 0])
        .concat(
          "029d08823bd8a8eab510ad6ac75c823cfd3ed31e".match(/../g)!.map((h) => parseInt(h, 16)),
        );
      const bytes = [...new TextEncoder().encode(pkt + "0000")];
      const r = await bottle([
        "exec",
        names[0]!,
        "--",
        "sh",
        "-c",
        `printf '${octal(bytes)}${
          octal(emptyPack)
        }' > /tmp/req && curl -s --data-binary @/tmp/req -H 'Content-Type: application/x-git-receive-pack-request' http://127.0.0.1:8080/workspace.git/git-receive-pack | tr -d '\\000'`,
      ], be.env);
      return r.stdout;
    };
    assert.match(await rawPush(tips[0]!, "refs/heads/own-again"), /ok refs\/heads\/own-again/);
    const stolen = await rawPush(tips[1]!, "refs/heads/steal");
    assert.match(stolen, /ng refs\/heads\/steal/);
    assert.doesNotMatch(stolen, /ok refs\/heads\/steal/);
  } finally {
    await Promise.all(names.map((n) => bottle(["stop", n], be.env)));
  }
});

Deno.test("git gate: workspace none and mount leave the gate out", async () => {
  await using be = await bottleEnv({ TEST_ANTHROPIC_KEY: SECRET });
  const repo = await userRepo(be.env.HOME!, AGENT_FILE);
  // The agent writes as its own user (uid 1000), whatever user runs the test.
  await Deno.chmod(repo, 0o777);
  const name = "coder-mnt1";
  const start = await bottle(
    ["start", "coder", "--detach", "--name", "mnt1", "--workspace", "mount"],
    be.env,
    { cwd: repo },
  );
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stderr, /workspace: mount gives the agent .* read-write/);
  try {
    // The directory itself, read-write: a file written there is on the host.
    const w = await bottle(
      [
        "exec",
        name,
        "--",
        "sh",
        "-c",
        "cat /workspace/new.txt && echo from-bottle > /workspace/out.txt",
      ],
      be.env,
    );
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.stdout.trim(), "untracked");
    assert.equal(await Deno.readTextFile(`${repo}/out.txt`), "from-bottle\n");
  } finally {
    await bottle(["stop", name], be.env);
  }
  const plan = await bottle(["plan", "coder", "--json", "--workspace", "none"], be.env, {
    cwd: repo,
  });
  assert.equal(plan.code, 0, plan.stderr);
  assert.equal(JSON.parse(plan.stdout).workspace.mode, "none");
});
