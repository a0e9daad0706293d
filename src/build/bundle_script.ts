/**
 * Writes bottle-bundle.js, the bundle daemons as one self-contained script,
 * into a build context. From a source checkout it is made with `deno bundle`
 * (npm dependencies inlined, so the bundle needs no network at run time); a
 * compiled bottle carries the file made at release time (`deno task compile`).
 * Bundling takes a second or two, so from source the result is cached by a
 * hash of the sources and the lock file.
 */
import { basename, join } from "node:path";
import { contextHash } from "./context_hash.ts";
import { pathExists } from "../state/path_exists.ts";
import { fileURLToPath as fromFileUrl } from "node:url";
import { run } from "../proc/runner.ts";

const ENTRY = new URL("../bundle/main.ts", import.meta.url);
const PREBUILT = new URL("../../dist/bottle-bundle.js", import.meta.url);
/** The import map lives in deno.json; bundling may run from any directory. */
const DENO_JSON = new URL("../../deno.json", import.meta.url);
const DENO_LOCK = new URL("../../deno.lock", import.meta.url);
const SRC = new URL("../", import.meta.url);

export async function writeBundleScript(dest: string, cacheDir: string): Promise<void> {
  if (isDenoCli()) {
    const key = await contextHash(
      fromFileUrl(SRC),
      [fromFileUrl(DENO_JSON), fromFileUrl(DENO_LOCK)],
      { deno: Deno.version.deno },
    );
    const cached = join(cacheDir, "bundle-script", `${key.slice(0, 16)}.js`);
    if (!(await pathExists(cached))) {
      await Deno.mkdir(join(cacheDir, "bundle-script"), { recursive: true, mode: 0o700 });
      // deno bundle reads the output format from the extension: keep ".js".
      const partial = cached.replace(/\.js$/, ".partial.js");
      await bundle(partial);
      await Deno.rename(partial, cached);
    }
    await Deno.copyFile(cached, dest);
    return;
  }
  await Deno.copyFile(fromFileUrl(PREBUILT), dest);
}

/** Bundles the daemons' entry point with `deno bundle`. */
export async function bundle(dest: string): Promise<void> {
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
}

/** True when running under the `deno` CLI (from source), not a compiled bottle. */
function isDenoCli(): boolean {
  return /^deno(\.exe)?$/.test(basename(Deno.execPath()));
}
