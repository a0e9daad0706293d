/**
 * Provisioning, written once, tested end to end on both runtimes: a bottle
 * with a prompt, two skills and CA trust starts; the prompt file is where
 * Claude Code is told to read it and readable by the agent user; the skills
 * sit at ~/.claude/skills/<name>/SKILL.md owned by the agent; the system
 * trust holds the bottle's CAs. On docker the agent container is the real
 * one; on smolmachines the fake smolvm runs the VM as a container of the
 * agent image, so the same commands run in a real guest userland.
 *
 * And the root/agent split holds: with symlinks planted at the targets (as
 * an agent could in a home that persists), provisioning never writes
 * through them into files the agent could not write itself.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { bottle, bottleEnv, labelled, NOTHING } from "../helpers/bottle_env.ts";
import { FAKE_SMOLVM, fakeSmolvm } from "../fakes/smolvm/test_helpers.ts";
import { run } from "../../src/proc/runner.ts";
import { provision } from "../../src/backends/launch/provision.ts";
import { ContainerRuntime } from "../../src/backends/docker/container_runtime.ts";
import { DockerCli } from "../../src/engine/docker_cli.ts";
import { makePlan } from "../../src/plan/make_plan.ts";
import { loadAgentFile } from "../../src/config/load.ts";

const PROMPT = "You review code in a bottle.\nBe brief.";

async function projectWithSkills(home: string, backend: string): Promise<string> {
  const dir = `${home}/project`;
  for (
    const [skill, files] of Object.entries({
      review: {
        "SKILL.md": "---\nname: review\n---\nReview things.\n",
        "notes/checklist.md": "- a\n",
      },
      release: {
        "SKILL.md": "---\nname: release\n---\nShip.\n",
        "bin/ship.sh": "#!/bin/sh\necho shipped\n",
      },
    })
  ) {
    for (const [rel, text] of Object.entries(files)) {
      const path = join(dir, "skills", skill, rel);
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
      await Deno.writeTextFile(path, text, { mode: rel.endsWith(".sh") ? 0o755 : 0o644 });
    }
  }
  await Deno.writeTextFile(
    join(dir, "bottle.yaml"),
    `version: 1
agents:
  prov:
    backend: ${backend}
    anthropic: none
    prompt: ${JSON.stringify(PROMPT)}
    skills: [./skills/review, ./skills/release]
`,
  );
  return dir;
}

/** Runs a shell snippet in the bottle through `bottle exec`, as the agent or root. */
async function inBottle(env: Record<string, string>, name: string, script: string, root = false) {
  const r = await bottle(
    ["exec", ...(root ? ["-u", "root"] : []), name, "--", "sh", "-c", script],
    env,
  );
  assert.equal(r.code, 0, `${script}: ${r.stderr}`);
  return r.stdout;
}

async function checkProvisioned(env: Record<string, string>, name: string, stateRoot: string) {
  const record = JSON.parse(
    await Deno.readTextFile(join(stateRoot, "bottles", name, "bottle.json")),
  ) as { program: string[] };
  assert.deepEqual(record.program, [
    "claude",
    "--append-system-prompt-file",
    "/home/agent/.bottle/prompt.md",
  ]);
  // As the agent user: the prompt is readable, and is the agent's.
  assert.equal(
    await inBottle(env, name, "id -un; cat /home/agent/.bottle/prompt.md"),
    `agent\n${PROMPT}`,
  );
  const owners = await inBottle(
    env,
    name,
    'cd /home/agent/.claude/skills && find . -mindepth 1 | sort | while read f; do echo "$f $(stat -c %U "$f")"; done',
  );
  assert.equal(
    owners,
    [
      "./release agent",
      "./release/SKILL.md agent",
      "./release/bin agent",
      "./release/bin/ship.sh agent",
      "./review agent",
      "./review/SKILL.md agent",
      "./review/notes agent",
      "./review/notes/checklist.md agent",
      "",
    ].join("\n"),
  );
  assert.equal(
    await inBottle(env, name, "/home/agent/.claude/skills/release/bin/ship.sh"),
    "shipped\n",
  );
  assert.match(
    await inBottle(env, name, "cat /home/agent/.claude/skills/review/SKILL.md"),
    /Review things/,
  );
  // Trust: the bottle's two CAs, in their own file and appended to the system bundle.
  const own = await inBottle(env, name, "cat /usr/local/share/ca-certificates/bottle.crt");
  assert.equal((own.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
  const system = await inBottle(env, name, "cat /etc/ssl/certs/ca-certificates.crt");
  assert.ok(
    system.trimEnd().endsWith(own.trim()),
    "the system bundle does not end with the bottle's CAs",
  );
  assert.ok((system.match(/BEGIN CERTIFICATE/g) ?? []).length > 50, "the system roots are gone");
  assert.match(
    await inBottle(env, name, "stat -c '%U %a' /usr/local/share/ca-certificates/bottle.crt"),
    /^root 644/,
  );
}

Deno.test("provisioning: prompt, two skills and CA trust on docker", async () => {
  await using be = await bottleEnv();
  const cwd = await projectWithSkills(be.env.HOME!, "docker");
  const r = await bottle(["start", "prov", "--detach", "--name", "d1"], be.env, { cwd });
  assert.equal(r.code, 0, r.stderr);
  try {
    await checkProvisioned(be.env, "prov-d1", be.stateRoot);
    // The egress CA the agent trusts is the one the bundle signs with.
    const egressCa = await run([
      "docker",
      "exec",
      "bottle-prov-d1-bundle",
      "cat",
      "/etc/bottle/egress-ca.pem",
    ]);
    const own = await inBottle(
      be.env,
      "prov-d1",
      "cat /usr/local/share/ca-certificates/bottle.crt",
    );
    assert.ok(own.includes(egressCa.stdout.trim()));
  } finally {
    await bottle(["stop", "prov-d1"], be.env);
  }
  assert.deepEqual(await labelled("bottle.id=prov-d1"), NOTHING);
});

Deno.test("provisioning: the same on smolmachines, in a real guest userland", async () => {
  await using fake = await fakeSmolvm({ dockerGuests: true });
  const cache = await Deno.makeTempDir({ prefix: "bottle-prov-cache-" });
  await using be = await bottleEnv({ ...fake.env, SMOLVM: FAKE_SMOLVM, XDG_CACHE_HOME: cache });
  const cwd = await projectWithSkills(be.env.HOME!, "smolmachines");
  try {
    const r = await bottle(["start", "prov", "--detach", "--name", "v1"], be.env, { cwd });
    assert.equal(r.code, 0, r.stderr);
    // The guest is a container of the agent image, made by the fake from the packed image.
    const guest = fake.guestContainer("bottle-prov-v1");
    const image = (await run(["docker", "inspect", "--format", "{{.Image}}", guest])).stdout.trim();
    const runImage = (await bottle(["build", "prov"], be.env, { cwd })).stdout.trim().split(
      "\n",
    )[2]!;
    const agentImage = (await run(["docker", "image", "inspect", "--format", "{{.Id}}", runImage]))
      .stdout.trim();
    assert.equal(image, agentImage);
    await checkProvisioned(be.env, "prov-v1", be.stateRoot);
    // exec -u as on docker: root is root, the default is the agent.
    assert.equal(await inBottle(be.env, "prov-v1", "id -u", true), "0\n");
    assert.equal(await inBottle(be.env, "prov-v1", "id -u"), "1000\n");
    const stop = await bottle(["stop", "prov-v1"], be.env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(await fake.machine("bottle-prov-v1"), undefined);
    const gone = await run(["docker", "inspect", guest], { check: false });
    assert.notEqual(gone.code, 0, "the guest container outlived its VM");
  } finally {
    await bottle(["cleanup", "--all"], be.env);
    await Deno.remove(cache, { recursive: true }).catch(() => {});
  }
});

Deno.test("provisioning: planted symlinks never lead a write outside what the agent may write", async () => {
  await using be = await bottleEnv();
  const cwd = await projectWithSkills(be.env.HOME!, "docker");
  const build = await bottle(["build", "prov"], be.env, { cwd });
  assert.equal(build.code, 0, build.stderr);
  const agentImage = build.stdout.split("\n")[0]!;
  const file = await loadAgentFile(join(cwd, "bottle.yaml"));
  const plan = makePlan(
    { name: "prov", definition: file.agents.prov!, origin: "test", baseDir: cwd, buildCaCerts: [] },
    {
      suffix: "sym",
      stateRoot: "/nonexistent",
      ownerHost: "h",
      ownerPid: 1,
      hostEnvNames: new Set(),
    },
  );
  const name = "bottle-test-provision-symlinks";
  await run(["docker", "rm", "-f", name], { check: false });
  await run([
    "docker",
    "run",
    "-d",
    "--name",
    name,
    "--network",
    "none",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--user",
    "agent",
    agentImage,
    "sleep",
    "infinity",
  ]);
  try {
    // What an agent could leave in its home: its target paths pointing at root's files.
    await run([
      "docker",
      "exec",
      name,
      "sh",
      "-c",
      [
        "rm -rf /home/agent/.bottle /home/agent/.claude/skills",
        "ln -s /etc/passwd /home/agent/.bottle",
        "ln -s /etc/ssl /home/agent/.claude/skills",
      ].join(" && "),
    ]);
    const before = await run([
      "docker",
      "exec",
      name,
      "sh",
      "-c",
      "sha256sum /etc/passwd; ls -A /etc/ssl /etc/ssl/certs | grep -v pem$; ls /etc | grep -Ei 'review|release|prompt'; true",
    ]);
    const runtime = new ContainerRuntime(new DockerCli({ env: {} }));
    const err = await provision(
      runtime,
      name,
      plan,
      "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n",
    )
      .then(() => undefined, (e: Error) => e);
    const after = await run([
      "docker",
      "exec",
      name,
      "sh",
      "-c",
      "sha256sum /etc/passwd; ls -A /etc/ssl /etc/ssl/certs | grep -v pem$; ls /etc | grep -Ei 'review|release|prompt'; true",
    ]);
    assert.equal(
      after.stdout,
      before.stdout,
      "a provisioning write went through a planted symlink",
    );
    // Either the agent's own tar refused the paths, or it replaced its own symlinks: both are fine.
    if (err) assert.match(err.message, /tar/);
    // The probe can fail: a root copy of the prompt file alone (no directory
    // entry to replace the link) goes straight through it.
    await run([
      "docker",
      "exec",
      name,
      "sh",
      "-c",
      "rm -rf /home/agent/.bottle && ln -s /etc /home/agent/.bottle",
    ]);
    const { writeTar } = await import("../../src/archive/tar.ts");
    await new DockerCli({ env: {} }).copyIn(
      name,
      "/home/agent",
      writeTar([{ path: ".bottle/prompt.md", type: "file", mode: 0o644, data: PROMPT }]),
    );
    const attacked = await run(["docker", "exec", name, "cat", "/etc/prompt.md"], { check: false });
    assert.equal(attacked.stdout, PROMPT, "the negative control did not write through the symlink");
  } finally {
    await run(["docker", "rm", "-f", name], { check: false });
  }
});
