/**
 * Per-bottle state on the host holds records and audit logs: dirs are
 * created 0700 and files 0600 regardless of the user's umask. A file is
 * created 0600 from its first byte (no window in which another user could
 * open it) under a temporary name and renamed into place, so a reader sees
 * the old file or the new one, never half of one (a full disk leaves the old).
 */
import { basename, dirname, join } from "node:path";

export async function makePrivateDir(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  await Deno.chmod(path, 0o700);
}

export async function writePrivateFile(path: string, data: string | Uint8Array): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const tmp = join(dirname(path), `.${basename(path)}.${Deno.pid}.${randomTag()}.tmp`);
  // The umask can only narrow 0600; chmod makes it exactly 0600 before any byte is in it.
  const f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
  try {
    await Deno.chmod(tmp, 0o600);
    let written = 0;
    while (written < bytes.length) written += await f.write(bytes.subarray(written));
    await f.sync();
  } catch (err) {
    f.close();
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  f.close();
  try {
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

function randomTag(): string {
  return [...crypto.getRandomValues(new Uint8Array(4))].map((b) => b.toString(16)).join("");
}
