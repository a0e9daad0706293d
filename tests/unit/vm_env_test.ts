/**
 * The smolmachines guest's secret env: written to a file on stdin (smolvm
 * takes env only on argv) and read by every command before it runs. Run
 * here with the real sh against a temp file in the file's place.
 */
import assert from "node:assert/strict";
import {
  GUEST_SECRET_ENV_FILE,
  secretEnvFile,
  withSecretEnv,
} from "../../src/backends/smolvm/vm_env.ts";
import { run } from "../../src/proc/runner.ts";

Deno.test("vm env: the file holds each variable quoted for sh; quotes and line breaks are refused", () => {
  assert.equal(
    secretEnvFile({ HTTPS_PROXY: "http://bottle:abc@10.0.0.2:3128", X: "a b $c" }),
    "HTTPS_PROXY='http://bottle:abc@10.0.0.2:3128'\nX='a b $c'\n",
  );
  assert.throws(() => secretEnvFile({ X: "it's" }), /quote or line break/);
  assert.throws(() => secretEnvFile({ X: "a\nB=1" }), /quote or line break/);
  assert.throws(() => secretEnvFile({ "X Y": "1" }), /Bad guest env name/);
});

Deno.test("vm env: every command reads the file, and its argv arrives as it was", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vm-env-" });
  try {
    const file = `${dir}/agent.env`;
    await Deno.writeTextFile(
      file,
      secretEnvFile({ HTTPS_PROXY: "http://bottle:tok@h:1", X: "$HOME" }),
    );
    // The wrapper as the VM runs it, pointed at this file instead of the guest's.
    const argv = withSecretEnv([
      "sh",
      "-c",
      'printf "%s|" "$HTTPS_PROXY" "$X" "$@"',
      "n",
      "a b",
      "'q'",
      "$(id)",
    ])
      .map((a) => a.replaceAll(GUEST_SECRET_ENV_FILE, file));
    // Only what the file gives: none of this process's own variables.
    const clean = { clearEnv: true, env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" } };
    const r = await run(argv, clean);
    assert.equal(r.stdout, "http://bottle:tok@h:1|$HOME|a b|'q'|$(id)|");
    // Without the file (before start wrote it), commands still run.
    await Deno.remove(file);
    const bare = await run(argv, clean);
    assert.equal(bare.stdout, "||a b|'q'|$(id)|");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
