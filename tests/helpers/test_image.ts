/**
 * TEST-ONLY: a small image a test needs (a dockerd, an sshd, iptables),
 * built once from its Dockerfile and tagged by the Dockerfile's hash, so a
 * changed Dockerfile is a new image and an unchanged one is never rebuilt.
 */
import { run } from "../../src/proc/runner.ts";
import { encodeHex } from "../../src/build/hex.ts";

export async function testImage(name: string, dockerfile: string): Promise<string> {
  const hash = encodeHex(
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(dockerfile))),
  ).slice(0, 16);
  const tag = `bottle-test/${name}:${hash}`;
  if ((await run(["docker", "image", "inspect", tag], { check: false })).code === 0) return tag;
  const dir = await Deno.makeTempDir({ prefix: `bottle-test-${name}-` });
  try {
    await Deno.writeTextFile(`${dir}/Dockerfile`, dockerfile);
    await run(["docker", "build", "--quiet", "--tag", tag, dir], { timeoutMs: 900_000 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return tag;
}
