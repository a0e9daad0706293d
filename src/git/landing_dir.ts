/**
 * A bottle's own `refs/heads/bottle/<name>/` (and its reflogs' dir) in the
 * host repository: the only ref directories the bundle may write (they are
 * bind-mounted read-write, the rest of the repository read-only). Made at
 * launch, each holding a dotfile (git lists no ref by a dotted name) so that
 * `git pack-refs` or deleting the last branch there cannot remove the dir
 * from under its mount; removed at the end when nothing landed, so a bottle
 * that pushed nothing leaves no trace.
 */
import { join } from "node:path";

const KEEP = ".bottle-keep";

export function landingDirs(prefix: string): string[] {
  const refs = prefix.replace(/\/$/, "");
  return [refs, `logs/${refs}`];
}

export async function makeLandingDir(gitDir: string, prefix: string): Promise<void> {
  for (const d of landingDirs(prefix)) {
    await Deno.mkdir(join(gitDir, d), { recursive: true });
    await Deno.writeTextFile(join(gitDir, d, KEEP), "");
  }
}

export async function removeLandingDirIfEmpty(gitDir: string, prefix: string): Promise<void> {
  for (const d of landingDirs(prefix)) {
    await Deno.remove(join(gitDir, d, KEEP)).catch(() => {});
    // Not recursive: a dir that holds a landed branch (or its log) stays, with it.
    const parts = d.split("/");
    for (let n = parts.length; n > (d.startsWith("logs/") ? 3 : 2); n--) {
      try {
        await Deno.remove(join(gitDir, ...parts.slice(0, n)));
      } catch {
        break;
      }
    }
  }
}
