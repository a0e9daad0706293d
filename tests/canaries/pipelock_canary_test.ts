/**
 * Canaries: what only the real, pinned pipelock can prove, where its image
 * can be pulled (ghcr.io) and the internet reached. Opt-in:
 *
 *   BOTTLE_RUN_CANARIES=1 deno test --allow-all tests/canaries/
 *
 * Skipped otherwise (the stand-in covers the rest of the contract). They
 * check that the pinned digest is a manifest list with linux/amd64 and
 * linux/arm64 images, that the configs bottle writes pass `pipelock check`,
 * and, in a real bottle with the real pipelock, that a fake AWS key in a
 * request body to an allowlisted host is blocked, a route's credential
 * reaches the upstream, and the health endpoint answers.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { run } from "../../src/proc/runner.ts";
import { PIPELOCK_IMAGE } from "../../src/bundle/pipelock/pipelock_release.ts";
import { makeBundleFiles } from "../../src/bundle/bundle_files.ts";
import { makePlan } from "../../src/plan/make_plan.ts";
import { builtinAgents } from "../../src/config/builtin.ts";
import { bottle, bottleEnv, inContainer, projectWith } from "../helpers/bottle_env.ts";

const ENABLED = Deno.env.get("BOTTLE_RUN_CANARIES") === "1";
const WHY = "set BOTTLE_RUN_CANARIES=1 where ghcr.io and the internet are reachable";

function canary(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  Deno.test({
    name: `canary: ${name}${ENABLED ? "" : ` (skipped: ${WHY})`}`,
    ignore: !ENABLED,
    fn,
  });
}

canary("the pinned pipelock image exists for linux/amd64 and linux/arm64", async () => {
  for (const platform of ["linux/amd64", "linux/arm64"]) {
    const pull = await run(["docker", "pull", "--quiet", "--platform", platform, PIPELOCK_IMAGE], {
      check: false,
      timeoutMs: 600_000,
    });
    assert.equal(pull.code, 0, `${platform}: ${pull.stderr}`);
    const arch = await run([
      "docker",
      "image",
      "inspect",
      "--format",
      "{{.Os}}/{{.Architecture}}",
      PIPELOCK_IMAGE,
    ]);
    assert.equal(arch.stdout.trim(), platform);
    // The binary the bundle copies is there, in the image pipelock makes for copying it.
    const ls = await run([
      "docker",
      "run",
      "--rm",
      "--platform",
      platform,
      "--entrypoint",
      "ls",
      PIPELOCK_IMAGE,
      "-l",
      "/pipelock",
    ], { check: false });
    if (platform === `linux/${Deno.build.arch === "aarch64" ? "arm64" : "amd64"}`) {
      assert.equal(ls.code, 0, ls.stderr);
    }
  }
});

canary("the configs bottle writes pass pipelock check", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bottle-canary-" });
  try {
    const plan = makePlan(
      {
        name: "claude",
        definition: builtinAgents().claude!,
        origin: "built-in",
        baseDir: "/",
        buildCaCerts: [],
      },
      {
        suffix: "c1",
        stateRoot: dir,
        ownerHost: "h",
        ownerPid: 1,
        hostEnvNames: new Set(["ANTHROPIC_API_KEY"]),
      },
    );
    const { files } = await makeBundleFiles(plan);
    for (const [name, text] of files) await Deno.writeTextFile(join(dir, name), text);
    await run(["chmod", "-R", "a+rX", dir]);
    for (const config of ["pipelock.yaml", "pipelock-routes.yaml"]) {
      const r = await run([
        "docker",
        "run",
        "--rm",
        "-v",
        `${dir}:/etc/bottle:ro`,
        "--entrypoint",
        "/pipelock",
        PIPELOCK_IMAGE,
        "check",
        "--config",
        `/etc/bottle/${config}`,
      ], { check: false, timeoutMs: 120_000 });
      assert.equal(r.code, 0, `${config}: ${r.stdout}${r.stderr}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const AGENT_FILE = `version: 1
agents:
  canary:
    command: [sleep, infinity]
    anthropic: none
    allowed_domains: [httpbin.org]
    routes:
      - host: httpbin.org
        header: x-bottle-canary
        template: "{value}"
        value: { env: BOTTLE_CANARY_SECRET }
`;

canary(
  "a real bottle with the real pipelock: DLP blocks, the credential arrives, health answers",
  async (t) => {
    const secret = `canary${crypto.randomUUID().replaceAll("-", "")}`;
    // The pinned image, not the stand-in.
    await using be = await bottleEnv({ BOTTLE_PIPELOCK_IMAGE: "", BOTTLE_CANARY_SECRET: secret });
    const cwd = await projectWith(be, AGENT_FILE);
    const start = await bottle(["start", "canary", "--detach", "--name", "k1"], be.env, { cwd });
    assert.equal(start.code, 0, start.stderr);
    const agent = "bottle-canary-k1-agent";
    try {
      await t.step("pipelock's health endpoint answers, both instances", async () => {
        for (const port of [8888, 8889]) {
          const r = await run([
            "docker",
            "exec",
            "bottle-canary-k1-bundle",
            "deno",
            "eval",
            `console.log(await (await fetch("http://127.0.0.1:${port}/health")).text())`,
          ]);
          assert.match(r.stdout, /"version"/, `${port}: ${r.stdout}`);
        }
      });
      await t.step("the route's credential reaches the upstream", async () => {
        const r = await inContainer(agent, "curl -sS -m 60 https://httpbin.org/headers");
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.stdout.includes(secret), r.stdout);
      });
      await t.step(
        "a fake AWS key in a request body to an allowlisted host is blocked",
        async () => {
          // Positive control first: the same POST without the key goes through.
          const clean = await inContainer(
            agent,
            "curl -sS -m 60 -o /dev/null -w '%{http_code}' --data 'hello' https://httpbin.org/post",
          );
          assert.equal(clean.stdout, "200", clean.stderr);
          const leaked = await inContainer(
            agent,
            "curl -sS -m 60 -o /dev/null -w '%{http_code}' --data 'key=AKIAIOSFODNN7EXAMPLE' https://httpbin.org/post",
          );
          assert.equal(leaked.stdout, "403", leaked.stderr);
        },
      );
    } finally {
      await bottle(["stop", "canary-k1"], be.env);
    }
  },
);
