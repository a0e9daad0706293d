import assert from "node:assert/strict";
import { CommandError, CommandNotFoundError, run, spawn } from "../../src/proc/runner.ts";
import { clearSecrets, registerSecret } from "../../src/proc/secrets.ts";

Deno.test("runner: captures stdout, stderr and a zero exit", async () => {
  const r = await run(["sh", "-c", "echo out; echo err >&2"]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "out\n");
  assert.equal(r.stderr, "err\n");
});

Deno.test("runner: a non-zero exit throws with argv, code and stderr tail", async () => {
  await assert.rejects(
    run(["sh", "-c", "echo first >&2; echo 'boom: it broke' >&2; exit 3"]),
    (e) => {
      assert.ok(e instanceof CommandError);
      assert.equal(e.code, 3);
      assert.deepEqual(e.argv, ["sh", "-c", "echo first >&2; echo 'boom: it broke' >&2; exit 3"]);
      assert.match(
        e.message,
        /^Command "sh -c 'echo first.*exit 3'" exited with code 3: first\nboom: it broke$/s,
      );
      return true;
    },
  );
});

Deno.test("runner: check:false returns the failing result instead of throwing", async () => {
  const r = await run(["sh", "-c", "exit 7"], { check: false });
  assert.equal(r.code, 7);
});

Deno.test("runner: the stderr tail keeps only the last lines", async () => {
  await assert.rejects(
    run(["sh", "-c", "for i in $(seq 1 100); do echo line$i >&2; done; exit 1"]),
    (e) => {
      assert.ok(e instanceof CommandError);
      assert.ok(!e.stderrTail.includes("line80\n"));
      assert.ok(e.stderrTail.endsWith("line100"));
      assert.equal(e.stderrTail.split("\n").length, 20);
      return true;
    },
  );
});

Deno.test("runner: a timeout kills the child and reports code 124", async () => {
  const started = Date.now();
  await assert.rejects(run(["sleep", "30"], { timeoutMs: 200 }), (e) => {
    assert.ok(e instanceof CommandError);
    assert.equal(e.code, 124);
    assert.equal(e.timedOut, true);
    assert.match(e.message, /timed out/);
    return true;
  });
  assert.ok(Date.now() - started < 10_000);
});

Deno.test("runner: an abort signal kills the child", async () => {
  const c = new AbortController();
  const p = run(["sleep", "30"], { signal: c.signal, check: false });
  setTimeout(() => c.abort(), 100);
  const r = await p;
  assert.notEqual(r.code, 0);
});

Deno.test("runner: secrets are redacted from argv and stderr in errors", async () => {
  registerSecret("hunter2-very-secret");
  try {
    await assert.rejects(
      run(["sh", "-c", "echo token=hunter2-very-secret >&2; exit 1", "hunter2-very-secret"]),
      (e) => {
        assert.ok(e instanceof CommandError);
        assert.ok(!e.message.includes("hunter2-very-secret"), e.message);
        assert.ok(!e.argv.join(" ").includes("hunter2-very-secret"));
        assert.match(e.message, /token=\*\*\*/);
        return true;
      },
    );
  } finally {
    clearSecrets();
  }
});

Deno.test("runner: secrets reach the child through env, not argv", async () => {
  // The child reports its own argv as the kernel has it (what `ps` shows).
  const r = await run(["sh", "-c", 'printf %s "$MY_SECRET"; tr "\\0" " " < /proc/$$/cmdline >&2'], {
    env: { MY_SECRET: "s3cr3t-value" },
  });
  assert.equal(r.stdout, "s3cr3t-value");
  assert.match(r.stderr, /sh -c printf/);
  assert.ok(!r.stderr.includes("s3cr3t-value"), `secret on the child's argv: ${r.stderr}`);
});

Deno.test("runner: stdin bytes are fed to the child", async () => {
  const r = await run(["cat"], { stdin: "hello via stdin" });
  assert.equal(r.stdout, "hello via stdin");
});

Deno.test("runner: a missing program says which one", async () => {
  await assert.rejects(run(["definitely-not-a-program-xyz"]), (e) => {
    assert.ok(e instanceof CommandNotFoundError);
    assert.match(e.message, /^Cannot run "definitely-not-a-program-xyz"/);
    return true;
  });
});

Deno.test("runner: spawn streams stdout while the child runs", async () => {
  const child = spawn(["sh", "-c", "echo one; sleep 0.3; echo two"]);
  const reader = child.process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const first = await reader.read();
  assert.equal(first.value, "one\n");
  reader.releaseLock();
  await child.process.stdout.cancel().catch(() => {});
  assert.equal((await child.status).code, 0);
});
