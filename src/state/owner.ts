/**
 * Is the process that launched a bottle still alive? A bottle whose launcher
 * died mid-launch (SIGKILL) is an orphan for `bottle cleanup`. Bottles made
 * on another host (a shared engine) are never judged from here.
 *
 * Linux has /proc; macOS does not, and there `kill -0 PID` asks instead
 * (it signals nothing: exit 0 when the process exists, even another user's,
 * which answers "no permission" and so still counts as alive).
 */
import { hostname } from "node:os";
import { run } from "../proc/runner.ts";

export interface OwnerCheckOptions {
  /** Where process dirs live; tests point it at a dir that does not exist to take the macOS path. */
  procDir?: string;
}

export async function ownerAlive(
  owner: { host?: string | undefined; pid?: string | undefined },
  opts: OwnerCheckOptions = {},
): Promise<boolean> {
  if (owner.host !== hostname()) return true;
  const pid = Number(owner.pid);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === Deno.pid) return true;
  const procDir = opts.procDir ?? "/proc";
  let hasProc = false;
  try {
    hasProc = (await Deno.stat(`${procDir}/self`)).isDirectory;
  } catch {
    hasProc = false;
  }
  if (hasProc) {
    try {
      return (await Deno.stat(`${procDir}/${pid}`)).isDirectory;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
  }
  const r = await run(["kill", "-0", String(pid)], { check: false, stdout: "null" });
  return r.code === 0 || /not permitted|permission/i.test(r.stderr);
}
