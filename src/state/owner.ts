/**
 * Is the process that launched a bottle still alive? A bottle whose launcher
 * died mid-launch (SIGKILL) is an orphan for `bottle cleanup`. Bottles made
 * on another host (a shared engine) are never judged from here.
 */
import { hostname } from "node:os";
import { run } from "../proc/runner.ts";

export async function ownerAlive(
  owner: { host?: string | undefined; pid?: string | undefined },
): Promise<boolean> {
  if (owner.host !== hostname()) return true;
  const pid = Number(owner.pid);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === Deno.pid) return true;
  try {
    const st = await Deno.stat(`/proc/${pid}`);
    return st.isDirectory;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
  }
  // No /proc (macOS): ask kill(1), which signals nothing with -0.
  const r = await run(["kill", "-0", String(pid)], {
    check: false,
    stdout: "null",
    stderr: "null",
  });
  return r.code === 0;
}
