/**
 * A bottle's own `refs/heads/bottle/<name>/` in the host repository: the one
 * ref directory the bundle may write (it is bind-mounted there read-write,
 * the rest of the repository read-only). Made at launch; removed at the end
 * when nothing landed in it, so a bottle that pushed nothing leaves no trace.
 */
import { join } from "node:path";

export async function makeLandingDir(gitDir: string, prefix: string): Promise<void> {
  await Deno.mkdir(join(gitDir, prefix), { recursive: true });
}

export async function removeLandingDirIfEmpty(gitDir: string, prefix: string): Promise<void> {
  // Not recursive: a dir that holds a landed branch stays, with it.
  for (const dir of [join(gitDir, prefix), join(gitDir, "refs/heads/bottle")]) {
    try {
      await Deno.remove(dir);
    } catch {
      return;
    }
  }
}
