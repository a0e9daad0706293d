import assert from "node:assert/strict";
import { hostname } from "node:os";
import { ownerAlive } from "../../src/state/owner.ts";

async function withChild(f: (pid: number) => Promise<void>): Promise<void> {
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    await f(child.pid);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

for (
  const [path, opts] of [["/proc", {}], ["kill -0 (no /proc, as on macOS)", {
    procDir: "/nonexistent",
  }]] as const
) {
  Deno.test(`owner liveness via ${path}: a live launcher is alive, a dead one is not`, async () => {
    let dead = 0;
    await withChild(async (pid) => {
      assert.equal(await ownerAlive({ host: hostname(), pid: String(pid) }, opts), true);
      dead = pid;
    });
    assert.equal(await ownerAlive({ host: hostname(), pid: String(dead) }, opts), false);
    // A process of another user (init, pid 1) is alive, not an orphan's launcher.
    assert.equal(await ownerAlive({ host: hostname(), pid: "1" }, opts), true);
    // Another host's bottle is never judged from here; nonsense pids are dead.
    assert.equal(await ownerAlive({ host: "other-host", pid: String(dead) }, opts), true);
    assert.equal(await ownerAlive({ host: hostname(), pid: "x" }, opts), false);
  });
}
