/**
 * `deno task compile`: the release binaries, one per target, in dist/.
 * The bundle daemons are bundled to dist/bottle-bundle/ first and carried
 * inside each binary with the image build contexts (images/). deno compile
 * needs a `denort` runtime per target; where it cannot be downloaded, point
 * DENORT_BIN at a local one (it then serves the target it was built for:
 * deno compile would wrap it for any --target, so other targets are refused
 * here, and every binary's header is checked against its target).
 *
 *   deno task compile [--target TRIPLE]...
 *
 * `compileTargets` is the same thing for scripts/release.ts.
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { bundle } from "../src/build/bundle_script.ts";
import { run } from "../src/proc/runner.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Where the compiled bottle looks for its bundle (src/build/bundle_script.ts PREBUILT). */
const BUNDLE_DIR = join(ROOT, "dist", "bottle-bundle");

/** Each release target and its asset's file name. */
export const TARGETS: Readonly<Record<string, string>> = {
  "x86_64-unknown-linux-gnu": "bottle-linux-x64",
  "aarch64-unknown-linux-gnu": "bottle-linux-arm64",
  "x86_64-apple-darwin": "bottle-macos-x64",
  "aarch64-apple-darwin": "bottle-macos-arm64",
};

export interface CompileOptions {
  /** Target triples (default: all of TARGETS). */
  targets?: string[];
  /** Where the binaries go (default: dist/). */
  outDir?: string;
  /** Progress lines (default: console.log). */
  log?: (line: string) => void;
}

/** One target: `path` when it was built, else `error` says why not. */
export type TargetResult =
  & { target: string; asset: string }
  & ({ path: string; error?: undefined } | { path?: undefined; error: string });

/** Rejects target triples that are not in TARGETS. */
export function unknownTargets(targets: string[]): string[] {
  return targets.filter((t) => !Object.hasOwn(TARGETS, t));
}

/**
 * Builds each target it can and says why not for the others. A target is
 * tried only when a `denort` for it can be had (DENORT_BIN for its platform,
 * or a trial compile that downloads one), so nothing is bundled when nothing
 * can be built. Old binaries of the targets asked for are removed first.
 */
export async function compileTargets(opts: CompileOptions = {}): Promise<TargetResult[]> {
  const targets = opts.targets?.length ? opts.targets : Object.keys(TARGETS);
  const unknown = unknownTargets(targets);
  if (unknown.length) {
    throw new Error(
      `Unknown target "${unknown[0]}": expected one of ${Object.keys(TARGETS).join(", ")}`,
    );
  }
  const outDir = opts.outDir ?? join(ROOT, "dist");
  const log = opts.log ?? console.log;
  await Deno.mkdir(outDir, { recursive: true });
  for (const t of targets) await Deno.remove(join(outDir, TARGETS[t]!)).catch(() => {});

  const results: TargetResult[] = [];
  const buildable: string[] = [];
  const probes = await Promise.all(targets.map((t) => runtimeProblem(t)));
  targets.forEach((target, i) => {
    const error = probes[i];
    if (error) results.push({ target, asset: TARGETS[target]!, error });
    else buildable.push(target);
  });
  if (!buildable.length) return results;

  await bundleAtomically();
  log("bundled dist/bottle-bundle/");
  for (const target of buildable) {
    const asset = TARGETS[target]!;
    const output = join(outDir, asset);
    const r = await run([
      Deno.execPath(),
      "compile",
      "--allow-all",
      "--target",
      target,
      "--include",
      join(ROOT, "images"),
      "--include",
      BUNDLE_DIR,
      "--output",
      output,
      join(ROOT, "main.ts"),
    ], { check: false, env: { NO_COLOR: "1" } });
    if (r.code !== 0) {
      results.push({ target, asset, error: compileError(r.stderr) + denortHint() });
      continue;
    }
    const made = binaryPlatform(await readHead(output));
    if (made !== platformOf(asset)) {
      await Deno.remove(output).catch(() => {});
      results.push({
        target,
        asset,
        error: `deno compile made a ${made ?? "unrecognized"} binary, not ${
          platformOf(asset)
        }; removed it${denortHint()}`,
      });
      continue;
    }
    log(`compiled ${output}`);
    results.push({ target, asset, path: output });
  }
  return results.sort((a, b) => targets.indexOf(a.target) - targets.indexOf(b.target));
}

/** "linux-x64" for "bottle-linux-x64". */
export function platformOf(asset: string): string {
  return asset.replace(/^bottle-/, "");
}

/**
 * The platform ("linux-x64", "macos-arm64", ...) an executable is for, from
 * its first bytes (ELF or 64-bit Mach-O header), or undefined.
 */
export function binaryPlatform(head: Uint8Array): string | undefined {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head.length >= 20 && view.getUint32(0) === 0x7f454c46 && head[5] === 1) {
    const machine = view.getUint16(18, true);
    const arch = machine === 0x3e ? "x64" : machine === 0xb7 ? "arm64" : undefined;
    return arch && `linux-${arch}`;
  }
  if (head.length >= 8 && view.getUint32(0, true) === 0xfeedfacf) {
    const cpu = view.getUint32(4, true);
    const arch = cpu === 0x01000007 ? "x64" : cpu === 0x0100000c ? "arm64" : undefined;
    return arch && `macos-${arch}`;
  }
  return undefined;
}

async function readHead(path: string): Promise<Uint8Array> {
  using f = await Deno.open(path);
  const buf = new Uint8Array(64);
  const n = await f.read(buf);
  return buf.subarray(0, n ?? 0);
}

/** Why `target` cannot be compiled here, or undefined when it can. */
export async function runtimeProblem(target: string): Promise<string | undefined> {
  const want = platformOf(TARGETS[target]!);
  const denort = Deno.env.get("DENORT_BIN");
  if (denort) {
    let have: string | undefined;
    try {
      have = binaryPlatform(await readHead(denort));
    } catch (err) {
      return `Cannot read DENORT_BIN "${denort}": ${err instanceof Error ? err.message : err}`;
    }
    if (!have) return `DENORT_BIN "${denort}" is not an ELF or Mach-O executable`;
    if (have !== want) {
      return `DENORT_BIN "${denort}" is a ${have} runtime: it cannot build ${want}`;
    }
    return undefined;
  }
  // A trial compile of an empty program: it downloads (and caches) the
  // target's denort, or fails saying why it could not.
  const dir = await Deno.makeTempDir({ prefix: "bottle-compile-probe-" });
  try {
    await Deno.writeTextFile(join(dir, "probe.ts"), "Deno.exit(0);\n");
    const r = await run([
      Deno.execPath(),
      "compile",
      "--quiet",
      "--no-config",
      "--target",
      target,
      "--output",
      join(dir, "probe"),
      join(dir, "probe.ts"),
    ], { check: false, cwd: dir, env: { NO_COLOR: "1" }, timeoutMs: 120_000 });
    if (r.code === 0) return undefined;
    return (r.timedOut ? "fetching its denort timed out" : compileError(r.stderr)) + denortHint();
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** deno compile's error in one line: the error and its deepest-detailed cause. */
function compileError(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter(Boolean);
  const causes = lines.flatMap((l) => /^\d+: (.*)$/.exec(l)?.[1] ?? []);
  const error = lines.find((l) => l.startsWith("error:"))?.replace(/^error:\s*/, "");
  if (causes.length) {
    const first = causes[0]!.replace(/\.$/, "");
    const detail = causes.slice(1).reduce((a, b) => (b.length > a.length ? b : a), "");
    return detail ? `${first}: ${detail}` : first;
  }
  return error ?? lines.filter((l) => !/^Stack backtrace|^\d+:/.test(l)).slice(-2).join(" / ");
}

function denortHint(): string {
  return Deno.env.get("DENORT_BIN")
    ? ""
    : " (set DENORT_BIN to a local denort where it cannot be downloaded)";
}

/** Bundles next to dist/bottle-bundle/ and swaps it in, so readers never see half a bundle. */
async function bundleAtomically(): Promise<void> {
  const partial = `${BUNDLE_DIR}.${Deno.pid}.partial`;
  await Deno.remove(partial, { recursive: true }).catch(() => {});
  await Deno.mkdir(join(ROOT, "dist"), { recursive: true });
  try {
    await bundle(partial);
    await Deno.remove(BUNDLE_DIR, { recursive: true }).catch(() => {});
    await Deno.rename(partial, BUNDLE_DIR);
  } finally {
    await Deno.remove(partial, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const wanted = Deno.args.flatMap((
    a,
    i,
    all,
  ) => (a === "--target" && all[i + 1] ? [all[i + 1]!] : []));
  const unknown = unknownTargets(wanted);
  if (unknown.length) {
    console.error(
      `compile: unknown target "${unknown[0]}": expected one of ${Object.keys(TARGETS).join(", ")}`,
    );
    Deno.exit(2);
  }
  const results = await compileTargets({ targets: wanted });
  const failed = results.filter((r) => r.error);
  for (const r of failed) console.error(`compile: ${r.target} (${r.asset}) failed: ${r.error}`);
  if (failed.length) Deno.exit(1);
}
