/**
 * The image cache key: a hash of everything that goes into a build (every
 * file in the context, the Dockerfile, the build arguments). Same inputs,
 * same tag, so a warm start skips `docker build` entirely.
 */
import { join, relative } from "node:path";
import { encodeHex } from "./hex.ts";

const SKIP = new Set([".git"]);

export async function contextHash(
  contextDir: string,
  /** Files outside the context that shape the result (the Dockerfile, a lock file). */
  extraFiles: string[],
  buildArgs: Record<string, string>,
): Promise<string> {
  const parts: Uint8Array[] = [];
  const enc = new TextEncoder();
  const add = (s: string | Uint8Array) => parts.push(typeof s === "string" ? enc.encode(s) : s);
  for (const f of extraFiles) add(`extra\0${await Deno.readTextFile(f)}\0`);
  for (const [k, v] of Object.entries(buildArgs).sort(([a], [b]) => a.localeCompare(b))) {
    add(`arg\0${k}\0${v}\0`);
  }
  for (const file of await listFiles(contextDir)) {
    const data = await Deno.readFile(join(contextDir, file));
    add(`file\0${file}\0${data.length}\0`);
    add(data);
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const all = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  return encodeHex(new Uint8Array(await crypto.subtle.digest("SHA-256", all)));
}

async function listFiles(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (SKIP.has(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await listFiles(root, p));
    else if (e.isFile) out.push(relative(root, p));
  }
  return out.sort();
}
