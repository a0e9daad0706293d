/**
 * The real Claude Code (the agent image's `claude`) drives a real docker
 * bottle against the scripted Anthropic API (tests/fakes/anthropic_api.ts),
 * reached as `anthropic.base_url` through the bottle's egress, credential
 * route and CA plumbing. The fake is the only model; what it saw is what
 * left the bottle.
 *
 * smolmachines is not covered here yet (the fake smolvm's guests now reach
 * the bundle's address as a VM does, so it could be).
 */
import { readTarFiles } from "../../src/archive/tar.ts";
import assert from "node:assert/strict";
import {
  bottle,
  bottleEnv,
  inContainer,
  labelled,
  MAIN,
  NOTHING,
  projectWith,
} from "../helpers/bottle_env.ts";
import type { AnthropicApi } from "../fakes/anthropic_api.ts";
import { API_HOST, bridgedApi } from "../helpers/bridged_api.ts";
import { placeholderFor } from "../../src/plan/anthropic.ts";
import { run } from "../../src/proc/runner.ts";
import * as L from "../../src/labels.ts";

/** An agent file whose Anthropic API is the fake, credential looked up on the host. */
const agentFile = (api: AnthropicApi) =>
  `version: 1
agents:
  cc:
    anthropic: { base_url: "${api.url(API_HOST)}/" }
`;

/** `claude -p` in a running bottle, through `bottle exec`. */
function claude(name: string, env: Record<string, string>, cwd: string, args: string[]) {
  return bottle(["exec", name, "--", "claude", "-p", ...args], env, { cwd });
}

Deno.test("claude code: the real agent works through a docker bottle (API key)", async (t) => {
  const key = `sk-ant-api03-${crypto.randomUUID()}-real`;
  const { api, env } = await bridgedApi();
  await using _api = api;
  await using be = await bottleEnv({ ANTHROPIC_API_KEY: key, ...env });
  const project = await projectWith(be, agentFile(api));
  const start = await bottle(["start", "cc", "--detach", "--name", "k1"], be.env, {
    cwd: project,
  });
  assert.equal(start.code, 0, start.stderr);
  const name = "cc-k1";
  const agent = `bottle-${name}-agent`;
  try {
    await t.step("claude -p prints the scripted answer; the fake saw the real key", async () => {
      api.push({ text: ["Hello ", "from ", "the script."] });
      const r = await claude(name, be.env, project, ["hi"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "Hello from the script.");
      api.assertDone();
      const call = api.calls.find((c) => c.turn === 0)!;
      assert.equal(call.request.headers["x-api-key"], key);
      assert.equal(call.request.headers["authorization"], undefined);
      assert.ok(call.stream, "claude streams its agent-loop calls");
      assert.ok(call.tools.includes("Bash"), `tools offered: ${call.tools.join(", ")}`);
      assert.match(call.request.headers["user-agent"] ?? "", /^claude-cli\//);
    });

    await t.step("the bottle holds only the placeholder", async () => {
      const placeholder = await inContainer(agent, 'printf %s "$ANTHROPIC_API_KEY"');
      assert.equal(placeholder.stdout, placeholderFor("ANTHROPIC_API_KEY"));
      const base = await inContainer(agent, 'printf %s "$ANTHROPIC_BASE_URL"');
      assert.equal(base.stdout, api.url(API_HOST));
      // Every file (Claude Code's own state included) and every process's env.
      const found = await inContainer(
        agent,
        `grep -rlF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -- '${key}' / 2>/dev/null; ` +
          "cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c -F -- " + `'${key}'; true`,
        "0",
      );
      assert.equal(found.stdout.trim(), "0", `the key is in the bottle: ${found.stdout}`);
      const inspect = await run(["docker", "inspect", agent]);
      assert.ok(!inspect.stdout.includes(key), "the key is in docker inspect of the agent");
      const claudeState = await inContainer(agent, "ls -a ~/.claude* 2>&1 | head -n 3");
      assert.ok(claudeState.stdout.length > 0, "claude left no state to search");
    });

    await t.step("a scripted Bash tool_use runs in the bottle; its output comes back", async () => {
      api.push(
        {
          text: ["Running it."],
          toolUses: [{
            name: "Bash",
            input: {
              command: "echo out-42 && id -un && printenv ANTHROPIC_API_KEY",
              description: "Print a marker",
            },
          }],
        },
        {
          expect: (call) => {
            const [result] = call.toolResults;
            assert.ok(result, "no tool_result in the call after the tool_use");
            assert.equal(result.isError, false, result.text);
            assert.equal(
              result.text.trim(),
              `out-42\nagent\n${placeholderFor("ANTHROPIC_API_KEY")}`,
            );
          },
          text: ["Done."],
        },
      );
      const r = await claude(name, be.env, project, [
        "--allowedTools",
        "Bash",
        "--",
        "print the marker",
      ]);
      assert.equal(r.code, 0, r.stderr);
      api.assertDone();
      assert.equal(r.stdout.trim(), "Done.");
      const answered = api.calls.filter((c) => c.turn === 2);
      assert.equal(answered[0]?.toolResults[0]?.toolUseId, "toolu_bottle_1_0");
    });

    await t.step("streamed events reach claude as they are sent, not batched", async () => {
      const chunks = ["one ", "two ", "three ", "four ", "five ", "six"];
      api.push({ text: chunks, gapMs: 350 });
      const lines = await timedLines(be.env, project, [
        "exec",
        name,
        "--",
        "claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--include-partial-messages",
        "count",
      ]);
      api.assertDone();
      const deltas = lines.filter(({ line }) => {
        const e = parse(line) as { type?: string; event?: { delta?: { type?: string } } };
        return e?.type === "stream_event" && e.event?.delta?.type === "text_delta";
      });
      assert.equal(deltas.length, chunks.length, lines.map((l) => l.line).join("\n"));
      const call = api.calls.find((c) => c.turn === 3)!;
      // The fake's events: message_start, content_block_start, the deltas, ...
      const sent = call.sentAt.slice(2, 2 + chunks.length);
      const sentSpan = sent.at(-1)! - sent[0]!;
      const seenSpan = deltas.at(-1)!.at - deltas[0]!.at;
      assert.ok(sentSpan >= 1500, `the fake sent its deltas over ${sentSpan} ms`);
      assert.ok(
        seenSpan >= sentSpan - 500,
        `sent over ${sentSpan.toFixed(0)} ms, seen by claude over ${seenSpan.toFixed(0)} ms`,
      );
      assert.ok(deltas[0]!.at < sent.at(-1)!, "the first delta arrived after the last was sent");
    });

    await t.step("a host outside the allowlist is refused and shows in bottle logs", async () => {
      api.push(
        {
          toolUses: [{
            name: "Bash",
            input: {
              // Positive control first, from the same shell: the allowlisted API host answers.
              command: `curl -sS -m 20 -o /dev/null -w 'allowed=%{http_code}\\n' ${
                api.url(API_HOST)
              }/control && curl -sS -m 20 -o /dev/null https://not-allowed.test/ || echo curl-failed`,
              description: "Fetch a page",
            },
          }],
        },
        {
          expect: (call) => {
            const text = call.toolResults[0]?.text ?? "";
            assert.match(text, /allowed=404/);
            assert.match(text, /CONNECT tunnel failed, response 403/);
            assert.match(text, /curl-failed/);
          },
          text: ["It was refused."],
        },
      );
      const r = await claude(name, be.env, project, ["--allowedTools", "Bash", "--", "fetch it"]);
      assert.equal(r.code, 0, r.stderr);
      api.assertDone();
      const logs = await bottle(["logs", name, "--json"], be.env, { cwd: project });
      assert.equal(logs.code, 0, logs.stderr);
      const entries = logs.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
      const refused = entries.filter((e) => e.host === "not-allowed.test");
      assert.ok(refused.length > 0, `no not-allowed.test line in: ${logs.stdout}`);
      assert.ok(refused.every((e) => e.status === 403 && e.decision === "denied"), logs.stdout);
      const routed = entries.filter((e) => e.host === `${API_HOST}:${api.port}`);
      assert.ok(routed.some((e) => e.decision === "routed" && e.status === 200), logs.stdout);
    });
  } finally {
    await bottle(["stop", name], be.env, { cwd: project });
  }
});

/** The one kept home of an agent (the test has one project). */
async function keptHomeOf(stateRoot: string, agent: string): Promise<string> {
  const dir = `${stateRoot}/homes/${agent}`;
  const files = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
  assert.equal(files.length, 1, files.join(" "));
  return `${dir}/${files[0]}`;
}

Deno.test("claude code: bottle run with an OAuth token, and claude's exit code", async (t) => {
  const token = `sk-ant-oat01-${crypto.randomUUID()}-real`;
  const { api, env } = await bridgedApi();
  await using _api = api;
  await using be = await bottleEnv({ CLAUDE_CODE_OAUTH_TOKEN: token, ...env });
  const project = await projectWith(be, agentFile(api));

  await t.step("bottle run prints claude's answer, exits 0 and leaves nothing", async () => {
    api.push(
      {
        toolUses: [{
          name: "Bash",
          input: { command: "id -un", description: "Show the user" },
        }],
      },
      {
        expect: (call) => assert.equal(call.toolResults[0]?.text.trim(), "agent"),
        text: ["Finished ", "the task."],
      },
    );
    const r = await bottle(
      ["run", "cc", "--name", "r1", "--allowed-tools", "Bash", "--", "who", "runs", "this?"],
      be.env,
      { cwd: project },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "Finished the task.");
    api.assertDone();
    const first = api.calls.find((c) => c.turn === 0)!;
    assert.equal(first.request.headers["authorization"], `Bearer ${token}`);
    assert.equal(first.request.headers["x-api-key"], undefined);
    assert.match(first.request.headers["anthropic-beta"] ?? "", /oauth-/);
    const prompt = JSON.stringify(first.request.body);
    assert.ok(prompt.includes("who runs this?"), "the prompt did not reach the model");
    assert.deepEqual(await labelled(`${L.BOTTLE_ID}=cc-r1`), NOTHING);
    // What Claude Code wrote in its home is kept for the next bottle of this agent, without the token.
    const kept = await Deno.readFile(await keptHomeOf(be.stateRoot, "cc"));
    const files = readTarFiles(kept);
    const config = JSON.parse(new TextDecoder().decode(files.get(".claude.json")));
    assert.ok(config.firstStartTime ?? config.userID ?? config.numStartups, JSON.stringify(config));
    assert.ok(
      !new TextDecoder().decode(kept).includes(token),
      "the OAuth token is in the kept home",
    );
  });

  await t.step(
    "the next bottle's Claude Code starts from the kept home and still works",
    async () => {
      const before = JSON.parse(
        new TextDecoder().decode(
          readTarFiles(await Deno.readFile(await keptHomeOf(be.stateRoot, "cc"))).get(
            ".claude.json",
          ),
        ),
      );
      api.push({ text: ["Again."] });
      const r = await bottle(["run", "cc", "--name", "r2", "--", "hi"], be.env, { cwd: project });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "Again.");
      api.assertDone();
      const after = JSON.parse(
        new TextDecoder().decode(
          readTarFiles(await Deno.readFile(await keptHomeOf(be.stateRoot, "cc"))).get(
            ".claude.json",
          ),
        ),
      );
      // The same Claude Code install, as far as its own state says: it was put back, not made anew.
      if (before.userID !== undefined) assert.equal(after.userID, before.userID);
      if (before.firstStartTime !== undefined) {
        assert.equal(after.firstStartTime, before.firstStartTime);
      }
      assert.ok(before.userID !== undefined || before.firstStartTime !== undefined);
    },
  );

  await t.step("--output-format json is passed through", async () => {
    api.push({ text: ["As JSON."] });
    const r = await bottle(["run", "cc", "--output-format", "json", "--", "hi"], be.env, {
      cwd: project,
    });
    assert.equal(r.code, 0, r.stderr);
    api.assertDone();
    const out = JSON.parse(r.stdout) as { type?: string; result?: string; is_error?: boolean };
    assert.equal(out.type, "result");
    assert.equal(out.result, "As JSON.");
    assert.equal(out.is_error, false);
  });

  await t.step("claude's failure is bottle run's exit code, after teardown", async () => {
    api.push({
      error: { status: 400, type: "invalid_request_error", message: "scripted refusal" },
    });
    const r = await bottle(["run", "cc", "--name", "r3", "--", "fail please"], be.env, {
      cwd: project,
    });
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout + r.stderr, /scripted refusal/);
    api.assertDone();
    assert.deepEqual(await labelled(`${L.BOTTLE_ID}=cc-r3`), NOTHING);
  });
});

/** Runs the bottle CLI and timestamps each stdout line as it arrives (performance.now()). */
async function timedLines(
  env: Record<string, string>,
  cwd: string,
  args: string[],
): Promise<{ at: number; line: string }[]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines: { at: number; line: string }[] = [];
  let buf = "";
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    const at = performance.now();
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      lines.push({ at, line: buf.slice(0, i) });
      buf = buf.slice(i + 1);
    }
  }
  const status = await child.status;
  assert.equal(status.code, 0, await stderr);
  return lines;
}

function parse(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

Deno.test("claude code: commits and pushes its work through the git gate", async () => {
  const key = `sk-ant-api03-${crypto.randomUUID()}-real`;
  const { api, env } = await bridgedApi();
  await using _api = api;
  await using be = await bottleEnv({ ANTHROPIC_API_KEY: key, ...env });
  const project = await projectWith(be, agentFile(api));
  const git = (args: string[]) => run(["git", "-C", project, ...args]);
  await git(["init", "--quiet", "--initial-branch=main"]);
  await git([
    "-c",
    "user.name=U",
    "-c",
    "user.email=u@example.com",
    "commit",
    "--quiet",
    "--allow-empty",
    "-m",
    "start",
  ]);
  await git(["add", "bottle.yaml"]);
  await git([
    "-c",
    "user.name=U",
    "-c",
    "user.email=u@example.com",
    "commit",
    "--quiet",
    "-m",
    "config",
  ]);
  const command =
    "git checkout -q -b fix && echo fixed > fix.txt && git add fix.txt && git -c user.name=Claude -c user.email=claude@example.com commit -q -m 'Fix it' && git push origin fix 2>&1";
  api.push(
    { toolUses: [{ name: "Bash", input: { command, description: "Commit and push the fix" } }] },
    {
      expect: (call) =>
        assert.match(
          call.toolResults[0]?.text ?? "",
          /landed in the host repository as bottle\/cc-g1\/fix/,
        ),
      text: ["Pushed."],
    },
  );
  const r = await bottle(
    ["run", "cc", "--name", "g1", "--allowed-tools", "Bash", "--", "fix", "and", "push"],
    be.env,
    { cwd: project },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "Pushed.");
  api.assertDone();
  const show = await git(["show", "--format=%s %an", "--no-patch", "bottle/cc-g1/fix"]);
  assert.equal(show.stdout.trim(), "Fix it Claude");
  assert.equal((await git(["show", "bottle/cc-g1/fix:fix.txt"])).stdout, "fixed\n");
  assert.equal((await git(["status", "--porcelain"])).stdout, "");
  assert.deepEqual(await labelled(`${L.BOTTLE_ID}=cc-g1`), NOTHING);
});
