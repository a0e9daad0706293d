/**
 * supervise with the real Claude Code (the agent image's `claude`) in a real
 * docker bottle, the scripted Anthropic API as its model, and the human's
 * side played by `bottle supervise` on the host: Claude Code is registered
 * with the daemon at provisioning, its request_approval call waits for the
 * host's answer, and under `bottle run` every permission prompt comes to the
 * host, where a denial keeps the command from ever running.
 */
import assert from "node:assert/strict";
import { bottle, bottleEnv, inContainer, projectWith } from "../helpers/bottle_env.ts";
import { cli } from "../helpers/cli.ts";
import type { AnthropicApi } from "../fakes/anthropic_api.ts";
import { API_HOST, bridgedApi } from "../helpers/bridged_api.ts";
import type { PermissionBody, SuperviseRequest } from "../../src/bundle/supervise/queue_files.ts";
import { run } from "../../src/proc/runner.ts";

const agentFile = (api: AnthropicApi) =>
  `version: 1
agents:
  cc:
    anthropic: { base_url: "${api.url(API_HOST)}/" }
    supervise: { timeout: 5m }
`;

/**
 * Plays the human while `running` runs: answers each pending request with
 * `decide`, through `bottle supervise` (in-process, this test's state dir).
 */
async function answerWhile(
  env: Record<string, string>,
  running: Promise<unknown>,
  decide: (r: SuperviseRequest) => string[] | Promise<string[]>,
): Promise<SuperviseRequest[]> {
  let done = false;
  running.finally(() => (done = true)).catch(() => {});
  const seen: SuperviseRequest[] = [];
  while (!done) {
    const list = await cli(["supervise", "--json"], { home: env.HOME!, env });
    assert.equal(list.code, 0, list.stderr);
    for (const line of list.stdout.split("\n").filter(Boolean)) {
      const r = JSON.parse(line) as SuperviseRequest;
      if (seen.some((s) => s.id === r.id)) continue;
      seen.push(r);
      const a = await cli(["supervise", ...await decide(r)], { home: env.HOME!, env });
      assert.equal(a.code, 0, a.stderr);
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  return seen;
}

Deno.test("supervise: Claude Code is connected, and its request_approval waits for the host's answer", async (t) => {
  const { api, env } = await bridgedApi();
  await using _api = api;
  await using be = await bottleEnv({ ANTHROPIC_API_KEY: "sk-ant-api03-test-real", ...env });
  const project = await projectWith(be, agentFile(api));
  const start = await bottle(["start", "cc", "--detach", "--name", "sv1"], be.env, {
    cwd: project,
  });
  assert.equal(start.code, 0, start.stderr);
  const name = "cc-sv1";
  const agent = `bottle-${name}-agent`;
  try {
    await t.step("claude mcp list inside the bottle shows supervise connected", async () => {
      const r = await bottle(["exec", name, "--", "claude", "mcp", "list"], be.env, {
        cwd: project,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /supervise: http:\/\/127\.0\.0\.1:8090\/mcp \(HTTP\) - ✔ Connected/);
    });

    await t.step("the agent reaches the daemon but not the queue", async () => {
      // Positive control from the same shell: the daemon answers.
      const health = await inContainer(
        agent,
        "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8090/healthz",
      );
      assert.equal(health.stdout, "200");
      const q = await inContainer(
        agent,
        `ls /var/lib/bottle/supervise ${be.stateRoot}/bottles/${name}/supervise 2>&1; ` +
          "find / -xdev -name '*.answer.json' 2>/dev/null | head -n 3",
      );
      assert.match(q.stdout, /No such file or directory[\s\S]*No such file or directory/);
      assert.ok(!q.stdout.includes(".answer.json"), q.stdout);
    });

    await t.step("a scripted request_approval gets the human's message", async () => {
      api.push(
        {
          text: ["Asking first."],
          toolUses: [{
            name: "mcp__supervise__request_approval",
            input: { action: "push the fix to main", why: "the tests pass" },
          }],
        },
        {
          expect: (call) => {
            const [result] = call.toolResults;
            assert.ok(result, "no tool_result after request_approval");
            assert.equal(result.isError, false, result.text);
            assert.match(result.text, /Approved by the human: ship it/);
          },
          text: ["Approved, pushing."],
        },
      );
      const running = bottle(
        [
          "exec",
          name,
          "--",
          "claude",
          "-p",
          "--allowedTools",
          "mcp__supervise__request_approval",
          "--",
          "push the fix",
        ],
        be.env,
        { cwd: project },
      );
      const seen = await answerWhile(be.env, running, (r) => ["--approve", r.id, "-m", "ship it"]);
      const r = await running;
      assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
      api.assertDone();
      assert.equal(r.stdout.trim(), "Approved, pushing.");
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.kind, "approval");
      assert.deepEqual(seen[0]!.body, { action: "push the fix to main", why: "the tests pass" });
    });

    await t.step(
      "a wait past the user's MCP_TOOL_TIMEOUT survives: the registration sets its own",
      async () => {
        // Claude Code cuts a call at MCP_TOOL_TIMEOUT whatever progress it hears,
        // unless the server's own timeout says otherwise (measured: 4 s cut it
        // without one). Provisioning gives supervise the request's timeout + 60 s.
        api.push(
          {
            toolUses: [{
              name: "mcp__supervise__request_approval",
              input: { action: "wait long" },
            }],
          },
          {
            expect: (call) =>
              assert.equal(call.toolResults[0]?.text, "Approved by the human: late"),
            text: ["Waited."],
          },
        );
        const t0 = Date.now();
        const running = run([
          "docker",
          "exec",
          "-e",
          "MCP_TOOL_TIMEOUT=3000",
          agent,
          "claude",
          "-p",
          "--allowedTools",
          "mcp__supervise__request_approval",
          "--",
          "wait",
        ], { check: false, timeoutMs: 120_000 });
        await answerWhile(be.env, running, async (r) => {
          await new Promise((res) => setTimeout(res, Math.max(0, 6000 - (Date.now() - t0))));
          return ["--approve", r.id, "-m", "late"];
        });
        const r = await running;
        assert.equal(r.code, 0, r.stderr);
        assert.ok(Date.now() - t0 >= 6000);
        api.assertDone();
        assert.equal(r.stdout.trim(), "Waited.");
      },
    );

    await t.step("bottle logs shows the request and the answer", async () => {
      const logs = await bottle(["logs", name], be.env, { cwd: project });
      assert.equal(logs.code, 0, logs.stderr);
      assert.match(logs.stdout, /ASK [0-9a-f]{16} request_approval: push the fix to main/);
      assert.match(logs.stdout, /ANSWER [0-9a-f]{16} request_approval approve by \S+: ship it/);
    });
  } finally {
    const stop = await bottle(["stop", name], be.env, { cwd: project });
    assert.equal(stop.code, 0, stop.stderr);
  }
});

Deno.test("supervise: under bottle run every permission prompt goes to the host; a denied Bash never runs", async () => {
  const { api, env } = await bridgedApi();
  await using _api = api;
  await using be = await bottleEnv({ ANTHROPIC_API_KEY: "sk-ant-api03-test-real", ...env });
  const project = await projectWith(be, agentFile(api));
  const bash = (command: string) => ({
    name: "Bash",
    input: { command, description: "a step of the test" },
  });
  api.push(
    { text: ["First."], toolUses: [bash("touch /tmp/marker-denied")] },
    {
      expect: (call) => {
        const [result] = call.toolResults;
        assert.ok(result, "no tool_result for the denied call");
        assert.equal(result.isError, true, result.text);
        assert.match(result.text, /not in this bottle/);
      },
      text: ["Then."],
      toolUses: [bash("touch /tmp/marker-allowed")],
    },
    {
      expect: (call) =>
        assert.equal(call.toolResults[0]?.isError, false, call.toolResults[0]?.text),
      text: ["Check."],
      toolUses: [bash("ls /tmp")],
    },
    {
      expect: (call) => {
        const [result] = call.toolResults;
        assert.ok(result, "no tool_result for ls");
        // The positive control: what was allowed ran, so ls sees it.
        assert.match(result.text, /marker-allowed/);
        assert.doesNotMatch(result.text, /marker-denied/);
      },
      text: ["Done."],
    },
  );
  const running = bottle(["run", "cc", "--name", "sv2", "--", "make the markers"], be.env, {
    cwd: project,
  });
  const seen = await answerWhile(be.env, running, (r) => {
    const command = String((r.body as { input?: { command?: string } }).input?.command ?? "");
    return command.includes("marker-denied")
      ? ["--deny", r.id, "-m", "not in this bottle"]
      : ["--approve", r.id];
  });
  const r = await running;
  assert.equal(r.code, 0, r.stderr);
  api.assertDone();
  assert.equal(r.stdout.trim(), "Done.");
  const asked = seen.map((s) => [s.kind, s.tool, (s.body as { tool_name?: string }).tool_name]);
  assert.ok(asked.length >= 2, `permission prompts seen: ${JSON.stringify(asked)}`);
  for (const a of asked) assert.deepEqual(a, ["permission", "permission_prompt", "Bash"]);
  const commands = seen.map((s) => String((s.body as PermissionBody).input.command));
  assert.ok(commands.includes("touch /tmp/marker-denied"), commands.join(" | "));
  assert.ok(commands.includes("touch /tmp/marker-allowed"), commands.join(" | "));
});

Deno.test("supervise: start --detach -- PROMPT runs the task unattended; its permission prompts wait for the host", async () => {
  const { api, env } = await bridgedApi();
  await using _api = api;
  await using be = await bottleEnv({ ANTHROPIC_API_KEY: "sk-ant-api03-test-real", ...env });
  const project = await projectWith(be, agentFile(api));
  api.push(
    {
      text: ["Making it."],
      toolUses: [{ name: "Bash", input: { command: "touch /tmp/marker-bg", description: "mark" } }],
    },
    {
      expect: (call) =>
        assert.equal(call.toolResults[0]?.isError, false, call.toolResults[0]?.text),
      text: ["Done in the background."],
    },
  );
  const name = "cc-sv3";
  const start = await bottle(
    ["start", "cc", "--detach", "--name", "sv3", "--", "make", "it"],
    be.env,
    {
      cwd: project,
    },
  );
  assert.equal(start.code, 0, start.stderr);
  // start has returned: the task runs on its own in the bottle.
  assert.match(start.stderr, /its task running/);
  // attach would run the agent, not the task a second time.
  const record = JSON.parse(await Deno.readTextFile(`${be.stateRoot}/bottles/cc-sv3/bottle.json`));
  assert.ok(!record.program.includes("--print"), record.program.join(" "));
  try {
    const log = () =>
      bottle(["exec", name, "--", "cat", "/home/agent/.bottle/session.log"], be.env);
    const finished = (async () => {
      for (let i = 0; i < 300; i++) {
        if ((await log()).stdout.includes("Done in the background.")) return;
        await new Promise((res) => setTimeout(res, 200));
      }
      throw new Error(`the task did not finish: ${(await log()).stdout}`);
    })();
    const seen = await answerWhile(be.env, finished, (r) => ["--approve", r.id]);
    await finished;
    api.assertDone();
    assert.deepEqual(seen.map((s) => [s.kind, (s.body as PermissionBody).tool_name]), [[
      "permission",
      "Bash",
    ]]);
    const marker = await inContainer(
      `bottle-${name}-agent`,
      "test -e /tmp/marker-bg && echo there",
    );
    assert.equal(marker.stdout.trim(), "there");
  } finally {
    const stop = await bottle(["stop", name], be.env, { cwd: project });
    assert.equal(stop.code, 0, stop.stderr);
  }
});

Deno.test("supervise: bottle run --allowed-tools adds to supervise's own allowed tools", async () => {
  const { api, env } = await bridgedApi();
  await using _api = api;
  await using be = await bottleEnv({ ANTHROPIC_API_KEY: "sk-ant-api03-test-real", ...env });
  const project = await projectWith(be, agentFile(api));
  api.push(
    {
      toolUses: [{ name: "Bash", input: { command: "echo allowed-42", description: "echo" } }],
    },
    {
      expect: (call) => assert.match(call.toolResults[0]?.text ?? "", /allowed-42/),
      toolUses: [{ name: "mcp__supervise__request_approval", input: { action: "finish" } }],
    },
    {
      expect: (call) => assert.equal(call.toolResults[0]?.text, "Approved by the human"),
      text: ["Both."],
    },
  );
  const running = bottle(
    ["run", "cc", "--name", "sv4", "--allowed-tools", "Bash", "--", "do both"],
    be.env,
    { cwd: project },
  );
  const seen = await answerWhile(be.env, running, (r) => ["--approve", r.id]);
  const r = await running;
  assert.equal(r.code, 0, r.stderr);
  api.assertDone();
  // Bash ran unasked (the user's --allowed-tools), the approval was asked for (supervise's own).
  assert.deepEqual(seen.map((s) => s.kind), ["approval"]);
});
