/**
 * Declared upstreams (`git:`), end to end with real git on both ends: a real
 * OpenSSH server (key login, its host key checked against the user's
 * known_hosts) and an HTTPS git host that wants a token. The agent clones
 * each by its real URL at its path, fetches what the upstream has now, and
 * pushes through the gate: the policy judges first, then the push goes on to
 * the upstream before the agent's `git push` returns, carrying the
 * upstream's own verdict back. The key and the token are nowhere the agent
 * can look.
 */
import assert from "node:assert/strict";
import {
  bottle,
  bottleEnv,
  inContainer,
  interfaceAddress,
  labelled,
  NOTHING,
  projectWith,
} from "../helpers/bottle_env.ts";
import { startSshGitServer } from "../fakes/ssh_git_server.ts";
import { startGitHttpsServer } from "../fakes/git_https_server.ts";
import { run } from "../../src/proc/runner.ts";

const API_KEY = "sk-ant-api03-the-real-key-of-this-test-0123456789abcdef";
const TOKEN = "ghp_TheTokenOfThisTest0123456789abcdefXYZ";

/** The ssh upstream: one commit on main, and a server hook of its own that refuses one branch. */
const SEED_SSH = `set -eu
git init --quiet --bare --initial-branch=main /srv/tool.git
cat > /srv/tool.git/hooks/pre-receive <<'EOF'
#!/bin/sh
while read old new ref; do
  case "$ref" in refs/heads/bottle/refused*) echo "upstream says no: $ref is protected here"; exit 1;; esac
done
EOF
chmod +x /srv/tool.git/hooks/pre-receive
git clone --quiet /srv/tool.git /tmp/seed 2>/dev/null
cd /tmp/seed
git config user.name Seed && git config user.email seed@example.com
echo 'the tool' > README
git add README && git commit --quiet -m 'tool: first'
git push --quiet origin main
`;

async function hostGit(args: string[]): Promise<string> {
  return (await run(["git", ...args])).stdout.trim();
}

Deno.test("git upstreams: cloned by their URL, fetched fresh, pushes judged then pushed on", async () => {
  const gateway = interfaceAddress("docker0");
  await using ssh = await startSshGitServer(gateway);
  await ssh.sh(SEED_SSH);
  await using https = await startGitHttpsServer({
    names: ["git.test"],
    hostname: gateway,
    token: TOKEN,
    repos: ["lib"],
  });
  // The https upstream's first commit, pushed straight into its bare repository.
  const seed = await Deno.makeTempDir({ prefix: "bottle-test-seed-" });
  await hostGit(["clone", "--quiet", `${https.root}/lib.git`, seed]);
  await Deno.writeTextFile(`${seed}/lib.txt`, "the lib\n");
  await hostGit(["-C", seed, "add", "lib.txt"]);
  await hostGit([
    "-C",
    seed,
    "-c",
    "user.name=Seed",
    "-c",
    "user.email=seed@example.com",
    "commit",
    "--quiet",
    "-m",
    "lib: first",
  ]);
  await hostGit(["-C", seed, "push", "--quiet", "origin", "main"]);
  await Deno.remove(seed, { recursive: true });

  await using be = await bottleEnv({
    TEST_ANTHROPIC_KEY: API_KEY,
    TEST_GIT_TOKEN: TOKEN,
    BOTTLE_BUNDLE_ADD_HOSTS: "sshd.test:host-gateway,git.test:host-gateway",
    BOTTLE_UPSTREAM_CA_CERTS: https.caFile,
  });
  const home = be.env.HOME!;
  const keyFile = `${home}/keys/id_ed25519`;
  await Deno.mkdir(`${home}/keys`, { mode: 0o700 });
  await Deno.writeTextFile(keyFile, ssh.clientKey, { mode: 0o600 });
  await Deno.mkdir(`${home}/.ssh`, { mode: 0o700 });
  // Outside a repository the agent commits as the user's global git identity.
  await Deno.writeTextFile(
    `${home}/.gitconfig`,
    "[user]\n\tname = Ada Host\n\temail = ada@example.com\n",
  );
  // The default known_hosts: the server's real key, as the user's ssh would have saved it.
  await Deno.writeTextFile(`${home}/.ssh/known_hosts`, `[sshd.test]:${ssh.port} ${ssh.hostKey}\n`);
  const sshUrl = `ssh://git@sshd.test:${ssh.port}/srv/tool.git`;
  const httpsUrl = `https://git.test:${https.port}/lib.git`;
  const project = await projectWith(
    be,
    `version: 1
agents:
  coder:
    anthropic: { api_key: { env: TEST_ANTHROPIC_KEY } }
    push: { max_size: 64k }
    git:
      - url: ${sshUrl}
        identity: { ssh_key: { file: ${keyFile} } }
      - url: ${httpsUrl}
        identity: { token: { env: TEST_GIT_TOKEN } }
        branches: ["bottle/*", "feature"]
        path: /home/agent/lib
`,
  );
  const name = "coder-up1";
  const start = await bottle(["start", "coder", "--detach", "--name", "up1"], be.env, {
    cwd: project,
  });
  assert.equal(start.code, 0, start.stderr);
  const sh = (dir: string, script: string) =>
    bottle(["exec", name, "--", "sh", "-c", `cd ${dir} && { ${script}; } 2>&1`], be.env);
  const tool = (script: string) => sh("/workspace/tool", script);
  const lib = (script: string) => sh("/home/agent/lib", script);
  try {
    // Each clone at its path, origin reading as the user wrote it.
    const view = await tool(
      "git config remote.origin.url && cat README && git log --format=%s && git config user.email",
    );
    assert.equal(view.code, 0, view.stdout);
    assert.deepEqual(view.stdout.trim().split("\n"), [
      sshUrl,
      "the tool",
      "tool: first",
      "ada@example.com",
    ]);
    const libView = await lib("git config remote.origin.url && cat lib.txt");
    assert.equal(libView.code, 0, libView.stdout);
    assert.deepEqual(libView.stdout.trim().split("\n"), [httpsUrl, "the lib"]);

    // An allowed push is on the upstream when `git push` returns.
    const push = await tool(
      "git checkout --quiet -b bottle/x && echo more >> README && git commit --quiet -am more && git push origin bottle/x && git rev-parse HEAD",
    );
    assert.equal(push.code, 0, push.stdout);
    assert.match(push.stdout, /refs\/heads\/bottle\/x pushed to ssh:\/\/git@sshd\.test/);
    const tip = push.stdout.trim().split("\n").at(-1)!;
    assert.equal(
      (await ssh.sh("git --git-dir=/srv/tool.git rev-parse refs/heads/bottle/x")).trim(),
      tip,
    );

    // The gate's rules first; then the upstream's own, whose words reach the agent.
    const rejected: [string, string, RegExp][] = [
      ["branch", "git push origin HEAD:main", /\[branch-pattern\] refs\/heads\/main/],
      [
        "force",
        "git commit --quiet --amend -m amended && git push --force origin bottle/x",
        /\[non-fast-forward\] refs\/heads\/bottle\/x/,
      ],
      ["delete", "git push origin :bottle/x", /\[deletion\] refs\/heads\/bottle\/x/],
      [
        "secret",
        "git checkout --quiet -B bottle/s main && echo AKIAIOSFODNN7EXAMPLE > k.txt && git add k.txt && git commit --quiet -m k && git push origin bottle/s",
        /\[secret\] commit [0-9a-f]{12} adds an AWS access key in k\.txt/,
      ],
      [
        "binary secret",
        "git checkout --quiet -B bottle/bin main && printf 'AKIAIOSFODNN7EXAMPLE\\000' > k.bin && git add k.bin && git commit --quiet -m bin && git push origin bottle/bin",
        /\[secret\] commit [0-9a-f]{12} adds an AWS access key in k\.bin/,
      ],
      [
        "size",
        "git checkout --quiet -B bottle/big main && head -c 300000 /dev/urandom > blob.bin && git add blob.bin && git commit --quiet -m big && git push origin bottle/big",
        /\[size\] the push adds .* more than the limit of 64 KiB/,
      ],
      [
        "upstream",
        "git checkout --quiet -B bottle/refused main && git commit --quiet --allow-empty -m r && git push origin bottle/refused",
        /upstream says no: refs\/heads\/bottle\/refused is protected here[\s\S]*\[upstream\]/,
      ],
      [
        // All or nothing: the upstream refuses one ref, so neither lands.
        "upstream, atomic",
        "git checkout --quiet -B bottle/ok2 main && git commit --quiet --allow-empty -m ok2 && git push origin bottle/ok2 bottle/refused",
        /upstream says no: refs\/heads\/bottle\/refused is protected here[\s\S]*\[upstream\]/,
      ],
    ];
    for (const [what, script, rule] of rejected) {
      const r = await tool(script);
      assert.notEqual(r.code, 0, `${what}: the push was accepted\n${r.stdout}`);
      assert.match(r.stdout, rule, what);
    }
    const upstreamRefs = await ssh.sh(
      "git --git-dir=/srv/tool.git for-each-ref --format='%(refname) %(objectname)'",
    );
    assert.equal(
      upstreamRefs.trim().split("\n").filter((l) => !l.startsWith("refs/heads/main ")).join("\n"),
      `refs/heads/bottle/x ${tip}`,
      "a rejected push reached the upstream",
    );
    // Nor is anything of it kept in the gate's mirror.
    const mirrorRefs = await run([
      "docker",
      "exec",
      `bottle-${name}-bundle`,
      "git",
      "--git-dir=/var/lib/bottle/git/tool.git",
      "for-each-ref",
      "--format=%(refname)",
    ]);
    assert.deepEqual(mirrorRefs.stdout.trim().split("\n").sort(), [
      "refs/heads/bottle/x",
      "refs/heads/main",
    ]);

    // A fetch brings what the upstream has now, not what it had at launch.
    await ssh.sh(
      "cd /tmp/seed && echo later > later.txt && git add later.txt && git commit --quiet -m 'tool: later' && git push --quiet origin main",
    );
    const fetched = await tool("git fetch --quiet origin && git log -1 --format=%s origin/main");
    assert.equal(fetched.code, 0, fetched.stdout);
    assert.equal(fetched.stdout.trim(), "tool: later");

    // Over https with the token: the push lands, the token's own value is a secret to the scan.
    const libPush = await lib(
      "git checkout --quiet -b feature && echo two >> lib.txt && git commit --quiet -am two && git push origin feature && git rev-parse HEAD",
    );
    assert.equal(libPush.code, 0, libPush.stdout);
    const libTip = libPush.stdout.trim().split("\n").at(-1)!;
    assert.equal(
      await hostGit(["--git-dir", `${https.root}/lib.git`, "rev-parse", "refs/heads/feature"]),
      libTip,
    );
    const leak = await lib(
      `git checkout --quiet -B bottle/leak main && echo 'token ${TOKEN}' > t.txt && git add t.txt && git commit --quiet -m t && git push origin bottle/leak`,
    );
    assert.notEqual(leak.code, 0, leak.stdout);
    assert.match(
      leak.stdout,
      /\[secret\] commit [0-9a-f]{12} adds a secret of this bottle in t\.txt/,
    );
    // The test wrote the token there itself: gone before the search below.
    assert.equal((await lib("git checkout --quiet main && rm -f t.txt")).code, 0);
    assert.equal(https.wrong.length, 0, "git sent wrong credentials");
    assert.ok(https.authorized > 0 && https.refused > 0, "the host's 401 challenge was not met");

    // The identities are nowhere the agent can look: a positive control first.
    const agent = `bottle-${name}-agent`;
    const keyLine = ssh.clientKey.split("\n")[1]!;
    assert.ok(keyLine.length > 30);
    const planted = `planted-${crypto.randomUUID()}`;
    const envs = await inContainer(
      agent,
      "env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'",
      "0",
    );
    assert.ok(envs.stdout.includes("HTTPS_PROXY="), "no environment was read");
    assert.ok(!envs.stdout.includes(TOKEN), "the token is in an agent environment");
    assert.ok(!envs.stdout.includes(keyLine), "the ssh key is in an agent environment");
    // Every file: the search must find the planted marker, and only it.
    const files = await inContainer(
      agent,
      `echo ${planted} > /tmp/planted && for s in '${planted}' '${TOKEN}' '${keyLine}'; do grep -rlF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -- "$s" / 2>/dev/null; done; true`,
      "0",
    );
    assert.equal(files.stdout.trim(), "/tmp/planted", `files holding a secret:\n${files.stdout}`);
    for (const c of [agent, `bottle-${name}-bundle`]) {
      const inspect = await run(["docker", "inspect", c]);
      assert.ok(!inspect.stdout.includes(TOKEN), `the token in docker inspect of ${c}`);
      assert.ok(!inspect.stdout.includes(keyLine), `the key in docker inspect of ${c}`);
    }
    const image = JSON.parse((await run(["docker", "inspect", agent])).stdout)[0].Config.Image;
    const history = await run(["docker", "history", "--no-trunc", image]);
    assert.ok(!history.stdout.includes(TOKEN) && !history.stdout.includes(keyLine));

    // Every push and its verdict is in the audit log; no secret is.
    const logs = await bottle(["logs", name, "--json"], be.env);
    const events = logs.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((e) =>
      e.daemon === "git-gate"
    );
    assert.deepEqual(events.map((e) => [e.upstream, e.decision]), [
      ["tool", "pushed"],
      ...rejected.map(() => ["tool", "rejected"]),
      ["lib", "pushed"],
      ["lib", "rejected"],
    ]);
    assert.ok(!logs.stdout.includes(TOKEN) && !logs.stdout.includes(keyLine));
  } finally {
    const stop = await bottle(["stop", name], be.env);
    assert.equal(stop.code, 0, stop.stderr);
  }
  assert.deepEqual(await labelled(`bottle.id=${name}`), NOTHING);
});

Deno.test("git upstreams: an ssh server whose key is not in known_hosts is refused at start", async () => {
  const gateway = interfaceAddress("docker0");
  await using ssh = await startSshGitServer(gateway);
  await ssh.sh(SEED_SSH);
  await using be = await bottleEnv({
    TEST_ANTHROPIC_KEY: API_KEY,
    BOTTLE_BUNDLE_ADD_HOSTS: "sshd.test:host-gateway",
  });
  const home = be.env.HOME!;
  await Deno.writeTextFile(`${home}/id`, ssh.clientKey, { mode: 0o600 });
  // Another server's key under this name: what a man in the middle would present.
  await Deno.writeTextFile(
    `${home}/known_hosts`,
    `[sshd.test]:${ssh.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHqYw7YVh3G5cI7hbYVvJyD3b3XUr4E9sVq1HjN4f2xk\n`,
  );
  const project = await projectWith(
    be,
    `version: 1
agents:
  coder:
    anthropic: { api_key: { env: TEST_ANTHROPIC_KEY } }
    git:
      - url: ssh://git@sshd.test:${ssh.port}/srv/tool.git
        identity: { ssh_key: { file: ${home}/id } }
        known_hosts: ${home}/known_hosts
`,
  );
  const start = await bottle(["start", "coder", "--detach", "--name", "up2"], be.env, {
    cwd: project,
  });
  assert.notEqual(start.code, 0, "a bottle started against an unverified server");
  assert.match(start.stderr, /could not clone ssh:\/\/git@sshd\.test/);
  assert.match(start.stderr, /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
  assert.deepEqual(await labelled("bottle.id=coder-up2"), NOTHING);
});
