/**
 * Writes bottle-bundle.js, the bundle daemons as one self-contained script,
 * into a build context. From a source checkout it is made with `deno bundle`
 * (npm dependencies inlined, so the bundle needs no network at run time); a
 * compiled bottle carries the file made at release time (`deno task compile`).
 */
import { basename } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { run } from "../proc/runner.ts";

const ENTRY = new URL("../bundle/main.ts", import.meta.url);
const PREBUILT = new URL("../../dist/bottle-bundle.js", import.meta.url);
/** The import map lives in deno.json; bundling may run from any directory. */
const DENO_JSON = new URL("../../deno.json", import.meta.url);

export async function writeBundleScript(dest: string): Promise<void> {
  if (isDenoCli()) {
    await run([
      Deno.execPath(),
      "bundle",
      "--quiet",
      "--config",
      fromFileUrl(DENO_JSON),
      "--platform=deno",
      fromFileUrl(ENTRY),
      "-o",
      dest,
    ]);
    return;
  }
  await Deno.copyFile(fromFileUrl(PREBUILT), dest);
}

/** True when running under the `deno` CLI (from source), not a compiled bottle. */
function isDenoCli(): boolean {
  return /^deno(\.exe)?$/.test(basename(Deno.execPath()));
}
