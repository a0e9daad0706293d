/**
 * `deno task release`: the release in dist/: the binaries (scripts/compile.ts),
 * SHA256SUMS, the Homebrew formula bottle.rb and install.sh. The formula and
 * SHA256SUMS cover exactly the binaries built; every target that could not
 * be built is named with the reason, and the exit code is then 1 (0 only
 * when every target asked for was built). When none was, nothing is written.
 *
 *   deno task release [--target TRIPLE]... [--base-url URL | --owner OWNER] [--out-dir DIR]
 *
 * The formula's URLs are `<base>/<asset>`: --base-url, else
 * BOTTLE_RELEASE_BASE_URL, else
 * https://github.com/<OWNER>/bottle/releases/download/v<version>
 * (--owner, default "bottle-dev").
 */
import { fileURLToPath } from "node:url";
import { basename, join } from "node:path";
import { compileTargets, type TargetResult, TARGETS, unknownTargets } from "./compile.ts";
import {
  formulaText,
  installScriptText,
  type ReleaseAsset,
  sha256sumsText,
} from "./release_files.ts";
import { VERSION } from "../src/version.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** The files a release writes besides the binaries. */
export const RELEASE_FILES = ["SHA256SUMS", "bottle.rb", "install.sh"] as const;

export interface ReleaseArgs {
  targets: string[];
  baseUrl: string;
  outDir: string;
}

/** Parses release.ts's arguments; throws a usage message on a mistake. */
export function parseReleaseArgs(
  args: string[],
  env: Record<string, string | undefined>,
): ReleaseArgs {
  const targets: string[] = [];
  let baseUrl = env.BOTTLE_RELEASE_BASE_URL || "";
  let owner = "bottle-dev";
  let outDir = join(ROOT, "dist");
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    const value = args[i + 1];
    if (!["--target", "--base-url", "--owner", "--out-dir"].includes(flag)) {
      throw new Error(`Unknown argument "${flag}"`);
    }
    if (value === undefined || value.startsWith("--")) throw new Error(`${flag} needs a value`);
    i++;
    if (flag === "--target") targets.push(value);
    else if (flag === "--base-url") baseUrl = value;
    else if (flag === "--owner") owner = value;
    else outDir = value;
  }
  const unknown = unknownTargets(targets);
  if (unknown.length) {
    throw new Error(
      `Unknown target "${unknown[0]}": expected one of ${Object.keys(TARGETS).join(", ")}`,
    );
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(owner)) throw new Error(`Invalid owner "${owner}"`);
  baseUrl ||= `https://github.com/${owner}/bottle/releases/download/v${VERSION}`;
  if (!/^https?:\/\//.test(baseUrl)) {
    throw new Error(`The base URL must be an http(s) URL: got "${baseUrl}"`);
  }
  return { targets, baseUrl: baseUrl.replace(/\/+$/, ""), outDir };
}

/** The assets at `paths`, with their SHA-256. */
export async function readAssets(paths: string[]): Promise<ReleaseAsset[]> {
  return await Promise.all(paths.map(async (p) => {
    const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(p));
    const sha256 = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"))
      .join("");
    return { name: basename(p), sha256 };
  }));
}

/** Writes SHA256SUMS, bottle.rb and install.sh for `assets` into `dir`. */
export async function writeReleaseFiles(
  dir: string,
  assets: ReleaseAsset[],
  version: string,
  baseUrl: string,
): Promise<void> {
  await Deno.writeTextFile(join(dir, "SHA256SUMS"), sha256sumsText(assets));
  await Deno.writeTextFile(join(dir, "bottle.rb"), formulaText(assets, version, baseUrl));
  await Deno.writeTextFile(join(dir, "install.sh"), installScriptText(baseUrl));
  await Deno.chmod(join(dir, "install.sh"), 0o755);
}

/** The summary of what was not built, one line per target. */
export function notBuiltText(results: TargetResult[]): string {
  return results.filter((r) => r.error)
    .map((r) => `release: not built: ${r.target} (${r.asset}): ${r.error}\n`).join("");
}

async function main(args: string[]): Promise<number> {
  let opts: ReleaseArgs;
  try {
    opts = parseReleaseArgs(args, Deno.env.toObject());
  } catch (err) {
    console.error(`release: ${err instanceof Error ? err.message : err}`);
    console.error(
      "usage: deno task release [--target TRIPLE]... [--base-url URL | --owner OWNER] [--out-dir DIR]",
    );
    return 2;
  }
  await Deno.mkdir(opts.outDir, { recursive: true });
  // A release dir holds this release only: no sums or formula of an older one.
  for (const f of [...RELEASE_FILES, ...Object.values(TARGETS)]) {
    await Deno.remove(join(opts.outDir, f)).catch(() => {});
  }
  console.log(`release: bottle ${VERSION}, assets at ${opts.baseUrl}/`);
  const results = await compileTargets({ targets: opts.targets, outDir: opts.outDir });
  const built = results.flatMap((r) => (r.path ? [r.path] : []));
  const notBuilt = notBuiltText(results);
  if (!built.length) {
    console.error(
      notBuilt + "release: no target was built: wrote no SHA256SUMS, formula or install.sh",
    );
    return 1;
  }
  const assets = await readAssets(built);
  await writeReleaseFiles(opts.outDir, assets, VERSION, opts.baseUrl);
  const names = assets.map((a) => a.name).join(", ");
  for (const f of RELEASE_FILES) console.log(`wrote ${join(opts.outDir, f)}`);
  if (notBuilt) {
    console.error(
      notBuilt +
        `release: partial release: SHA256SUMS and bottle.rb cover only ${names}; install.sh refuses the other platforms`,
    );
    return 1;
  }
  console.log(`release: built ${names}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
