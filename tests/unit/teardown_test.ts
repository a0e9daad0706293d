import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const FIXTURE = fileURLToPath(new URL("../testdata/teardown_fixture.ts", import.meta.url));

/** Starts the fixture and resolves once it has printed `ready <step>`. */
async function startUntil(step: string, log: string, failAt?: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", FIXTURE, log, step, ...(failAt ? [failAt] : [])],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes(`ready ${step}`)) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
  }
  reader.cancel().catch(() => {});
  return child;
}

for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  for (const step of ["network", "bundle", "agent"]) {
    Deno.test(`teardown: ${sig} during "${step}" releases what exists, in reverse, once`, async () => {
      const log = await Deno.makeTempFile();
      try {
        const child = await startUntil(step, log);
        child.kill(sig);
        // A second signal during teardown must not start it again.
        setTimeout(() => {
          try {
            child.kill(sig);
          } catch { /* exited */ }
        }, 20);
        const status = await child.status;
        assert.equal(status.code, code);
        const steps = ["network", "bundle", "agent"];
        const made = steps.slice(0, steps.indexOf(step) + 1);
        const expected = [
          ...made.map((s) => `create ${s}`),
          ...made.toReversed().map((s) => `release ${s}`),
          `exit ${code}`,
        ];
        assert.deepEqual((await Deno.readTextFile(log)).trim().split("\n"), expected);
      } finally {
        await Deno.remove(log);
      }
    });
  }
}

Deno.test("teardown: an error at a step releases in reverse and exits 1", async () => {
  const log = await Deno.makeTempFile();
  try {
    const child = await startUntil("bundle", log, "bundle");
    assert.equal((await child.status).code, 1);
    assert.deepEqual((await Deno.readTextFile(log)).trim().split("\n"), [
      "create network",
      "create bundle",
      "release bundle",
      "release network",
      "exit 1",
    ]);
  } finally {
    await Deno.remove(log);
  }
});
