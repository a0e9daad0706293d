/**
 * `deno task compile`: the release binaries, one per target, in dist/.
 * The bundle daemons are bundled to dist/bottle-bundle/ first and carried
 * inside each binary with the image build contexts (images/). deno compile
 * needs a `denort` runtime per target; where it cannot be downloaded, point
 * DENORT_BIN at a local one (it then serves the target it was built for).
 *
 *   deno task compile [--target TRIPLE]...
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { bundle } from "../src/build/bundle_script.ts";
import { run } from "../src/proc/runner.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TARGETS: Record<string, string> = {
  "x86_64-unknown-linux-gnu": "bottle-linux-x64",
  "aarch64-unknown-linux-gnu": "bottle-linux-arm64",
  "x86_64-apple-darwin": "bottle-macos-x64",
  "aarch64-apple-darwin": "bottle-macos-arm64",
};

const wanted = Deno.args.flatMap((
  a,
  i,
  all,
) => (a === "--target" && all[i + 1] ? [all[i + 1]!] : []));
for (const t of wanted) {
  if (!TARGETS[t]) {
    console.error(
      `compile: unknown target "${t}": expected one of ${Object.keys(TARGETS).join(", ")}`,
    );
    Deno.exit(2);
  }
}
const targets = wanted.length ? wanted : Object.keys(TARGETS);

await Deno.mkdir(join(ROOT, "dist"), { recursive: true });
await Deno.remove(join(ROOT, "dist", "bottle-bundle"), { recursive: true }).catch(() => {});
await bundle(join(ROOT, "dist", "bottle-bundle"));
console.log("bundled dist/bottle-bundle/");

const failed: string[] = [];
for (const target of targets) {
  const output = join(ROOT, "dist", TARGETS[target]!);
  const r = await run([
    Deno.execPath(),
    "compile",
    "--allow-all",
    "--target",
    target,
    "--include",
    join(ROOT, "images"),
    "--include",
    join(ROOT, "dist", "bottle-bundle"),
    "--output",
    output,
    join(ROOT, "main.ts"),
  ], { check: false, env: Deno.env.toObject() });
  if (r.code === 0) console.log(`compiled ${output}`);
  else {
    failed.push(target);
    const hint = Deno.env.get("DENORT_BIN")
      ? ""
      : " (set DENORT_BIN to a local denort where it cannot be downloaded)";
    const said = r.stderr.split("\n").filter((l) =>
      l.trim() && !/^\s*(\d+:|Stack backtrace)/.test(l)
    );
    console.error(`compile: ${target} failed${hint}:\n${said.slice(-4).join("\n")}`);
  }
}
if (failed.length) Deno.exit(1);
