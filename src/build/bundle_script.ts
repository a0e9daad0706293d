/**
 * Writes bottle-bundle/, the bundle daemons as self-contained JavaScript,
 * into a build context. It is made with `deno bundle --code-splitting`
 * (npm dependencies inlined, so the bundle needs no network at run time),
 * one small entry chunk per daemon: init starts in tens of milliseconds
 * because it never loads what egress needs. From a source checkout the
 * result is cached by a hash of the sources and the lock file (bundling
 * takes a second or two); a compiled bottle carries the dir made at release
 * time (`deno task compile`).
 */
import { join } from "node:path";
import { underDenoCli } from "../proc/deno_cli.ts";
import { contextHash } from "./context_hash.ts";
import { pathExists } from "../state/path_exists.ts";
import { fileURLToPath as fromFileUrl } from "node:url";
import { run } from "../proc/runner.ts";

const ENTRY = new URL("../bundle/main.ts", import.meta.url);
const PREBUILT = new URL("../../dist/bottle-bundle/", import.meta.url);
/** The import map lives in deno.json; bundling may run from any directory. */
const DENO_JSON = new URL("../../deno.json", import.meta.url);
const DENO_LOCK = new URL("../../deno.lock", import.meta.url);
const SRC = new URL("../", import.meta.url);
/** The entry point inside the bundle dir (what the bundle image runs). */
export const BUNDLE_ENTRY = "main.js";

export async function writeBundleScript(destDir: string, cacheDir: string): Promise<void> {
  let source = fromFileUrl(PREBUILT);
  if (underDenoCli()) {
    const key = await contextHash(
      fromFileUrl(SRC),
      [fromFileUrl(DENO_JSON), fromFileUrl(DENO_LOCK)],
      { deno: Deno.version.deno, layout: "split-1" },
    );
    source = join(cacheDir, "bundle-script", key.slice(0, 16));
    if (!(await pathExists(source))) {
      await Deno.mkdir(join(cacheDir, "bundle-script"), { recursive: true, mode: 0o700 });
      const partial = `${source}.${Deno.pid}.partial`;
      await bundle(partial);
      try {
        await Deno.rename(partial, source);
      } catch (err) {
        // Another launch made the same bundle first: theirs is as good.
        await Deno.remove(partial, { recursive: true }).catch(() => {});
        if (!(await pathExists(source))) throw err;
      }
    }
  }
  await Deno.mkdir(destDir, { recursive: true });
  for await (const e of Deno.readDir(source)) {
    if (e.isFile) await Deno.copyFile(join(source, e.name), join(destDir, e.name));
  }
}

/** Bundles the daemons' entry point with `deno bundle` into `outDir`. */
export async function bundle(outDir: string): Promise<void> {
  await run([
    Deno.execPath(),
    "bundle",
    "--quiet",
    "--config",
    fromFileUrl(DENO_JSON),
    "--platform=deno",
    "--code-splitting",
    "--outdir",
    outDir,
    fromFileUrl(ENTRY),
  ]);
  if (!(await pathExists(join(outDir, BUNDLE_ENTRY)))) {
    throw new Error(`deno bundle wrote no ${BUNDLE_ENTRY} in "${outDir}"`);
  }
}
