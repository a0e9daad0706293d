/**
 * TEST-ONLY: builds an image that has the pipelock stand-in at `/pipelock`,
 * where the official pipelock image has its binary, so the bundle image can
 * be built with `BOTTLE_PIPELOCK_IMAGE=<this>` where pipelock's own image
 * cannot be pulled. `/pipelock` is a shell script carrying the stand-in
 * bundled into one file, run by the bundle image's Deno.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "../../src/proc/runner.ts";
import { encodeHex } from "../../src/build/hex.ts";

const STANDIN = fileURLToPath(new URL("./pipelock_standin.ts", import.meta.url));
export const STANDIN_REPOSITORY = "bottle-test/pipelock-standin";

export async function buildPipelockStandinImage(docker = "docker"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bottle-pipelock-standin-" });
  try {
    const js = join(dir, "standin.js");
    const config = fileURLToPath(new URL("../../deno.json", import.meta.url));
    await run([
      Deno.execPath(),
      "bundle",
      "--quiet",
      "--config",
      config,
      "--platform=deno",
      STANDIN,
      "-o",
      js,
    ]);
    const code = await Deno.readTextFile(js);
    const script = [
      "#!/bin/sh",
      "# TEST-ONLY pipelock stand-in (see tests/fakes/pipelock_standin.ts): not pipelock.",
      // A fixed path, written once: Deno's code cache (warmed at bundle image
      // build) then serves every start.
      'js="/tmp/pipelock-standin.js"',
      'if [ ! -s "$js" ]; then',
      "cat > \"$js.$$\" <<'__PIPELOCK_STANDIN__'",
      code,
      "__PIPELOCK_STANDIN__",
      'mv "$js.$$" "$js"',
      "fi",
      'exec /usr/local/bin/deno run --allow-all --no-prompt "$js" "$@"',
      "",
    ].join("\n");
    await Deno.writeTextFile(join(dir, "pipelock"), script, { mode: 0o755 });
    await Deno.writeTextFile(join(dir, "Dockerfile"), "FROM scratch\nCOPY pipelock /pipelock\n");
    const hash = encodeHex(
      new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(script))),
    );
    const tag = `${STANDIN_REPOSITORY}:${hash.slice(0, 16)}`;
    const exists = await run([docker, "image", "inspect", tag], { check: false });
    if (exists.code !== 0) await run([docker, "build", "--quiet", "--tag", tag, dir]);
    return tag;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) console.log(await buildPipelockStandinImage());
