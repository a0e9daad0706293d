/**
 * Per-bottle state on the host holds CA keys, configs and audit logs: dirs
 * are created 0700 and files 0600 regardless of the user's umask.
 */
export async function makePrivateDir(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  await Deno.chmod(path, 0o700);
}

export async function writePrivateFile(path: string, data: string | Uint8Array): Promise<void> {
  if (typeof data === "string") await Deno.writeTextFile(path, data, { mode: 0o600 });
  else await Deno.writeFile(path, data, { mode: 0o600 });
  await Deno.chmod(path, 0o600);
}
