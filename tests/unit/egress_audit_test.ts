import assert from "node:assert/strict";
import { AuditLog } from "../../src/bundle/audit_log.ts";
import { clearSecrets, registerSecret } from "../../src/proc/secrets.ts";

Deno.test("the audit log appends one JSON line per entry, readable by its owner only", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/audit.jsonl`;
    const log = await AuditLog.open(path, "b1");
    log.write({
      method: "GET",
      host: "a",
      path: "/x",
      status: 200,
      bytes_up: 1,
      bytes_down: 2,
      decision: "routed",
      reason: "r",
    });
    log.write({
      method: "CONNECT",
      host: "b",
      status: 200,
      bytes_up: 3,
      bytes_down: 4,
      decision: "tunneled",
      reason: "t",
    });
    log.close();
    const lines = (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    assert.deepEqual(Object.keys(lines[0]), [
      "time",
      "bottle",
      "method",
      "host",
      "path",
      "status",
      "bytes_up",
      "bytes_down",
      "decision",
      "reason",
    ]);
    assert.equal("path" in lines[1], false);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a registered secret never reaches the audit log", async () => {
  const dir = await Deno.makeTempDir();
  clearSecrets();
  try {
    registerSecret("sk-very-secret");
    const log = await AuditLog.open(`${dir}/a.jsonl`, "b1");
    log.write({
      method: "GET",
      host: "a",
      status: 502,
      bytes_up: 0,
      bytes_down: 0,
      decision: "error",
      reason: "bad sk-very-secret",
    });
    log.close();
    const text = await Deno.readTextFile(`${dir}/a.jsonl`);
    assert.ok(!text.includes("sk-very-secret"));
    assert.match(text, /bad \*\*\*/);
  } finally {
    clearSecrets();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an existing audit log is tightened to 0600", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/a.jsonl`, "", { mode: 0o644 });
    await Deno.chmod(`${dir}/a.jsonl`, 0o644);
    (await AuditLog.open(`${dir}/a.jsonl`, "b")).close();
    assert.equal((await Deno.stat(`${dir}/a.jsonl`)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
