/**
 * Warm start to "agent ready for exec": `bottle start --detach` against a
 * plain shell script making the same docker calls, alternated in one run
 * (images cached). Target: bottle within 1.25x of the script. Also reports
 * the agent image's size (target: at most 500 MB).
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { run } from "../src/proc/runner.ts";
import { buildPipelockStandinImage } from "../tests/fakes/pipelock_standin_image.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "5");
const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const SCRIPT = fileURLToPath(new URL("./docker_start_script.sh", import.meta.url));

const home = await Deno.makeTempDir({ prefix: "bottle-bench-" });
const env: Record<string, string> = {
  HOME: home,
  XDG_STATE_HOME: `${home}/state`,
  BOTTLE_PIPELOCK_IMAGE: Deno.env.get("BOTTLE_PIPELOCK_IMAGE") ?? await buildPipelockStandinImage(),
  NO_COLOR: "1",
};
const bottle = (args: string[]) =>
  run([Deno.execPath(), "run", "--allow-all", MAIN, ...args], { env });

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return (performance.now() - t) / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  // Warm: build images and keep one bottle's bundle config for the script.
  const images = (await bottle(["build"])).stdout.trim().split("\n");
  const [agentImage, bundleImage] = images as [string, string];
  await bottle(["start", "--detach", "--name", "ref"]);
  const ref = join(home, "state", "bottle", "bottles", "claude-ref");
  const cfg = await Deno.makeTempDir({ prefix: "bottle-bench-cfg-" });
  await run(["cp", "-a", `${join(ref, "bundle")}/.`, cfg]);
  await Deno.copyFile(join(ref, "agent-trust.pem"), join(cfg, "..", "bench-trust.pem"));
  await bottle(["stop", "claude-ref"]);

  const tBottle: number[] = [];
  const tScript: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    tBottle.push(await timed(() => bottle(["start", "--detach", "--name", `b${i}`])));
    await bottle(["stop", `claude-b${i}`]);
    const name = `bench-script-${i}`;
    tScript.push(
      await timed(() =>
        run([
          "bash",
          SCRIPT,
          name,
          agentImage,
          bundleImage,
          cfg,
          join(cfg, "..", "bench-trust.pem"),
        ])
      ),
    );
    await run(["docker", "rm", "-f", `${name}-agent`, `${name}-bundle`]);
    await run(["docker", "network", "rm", `${name}-int`, `${name}-out`]);
  }
  const b = median(tBottle);
  const s = median(tScript);
  console.log(
    `warm start (median of ${ROUNDS}): bottle ${b.toFixed(2)} s, script ${s.toFixed(2)} s, ratio ${
      (b / s).toFixed(2)
    }x (target <= 1.25x)`,
  );
  console.log(`  bottle runs: ${tBottle.map((x) => x.toFixed(2)).join(" ")}`);
  console.log(`  script runs: ${tScript.map((x) => x.toFixed(2)).join(" ")}`);
  const size = Number(
    (await run(["docker", "image", "inspect", "--format", "{{.Size}}", agentImage])).stdout,
  );
  console.log(`agent image ${agentImage}: ${(size / 1e6).toFixed(0)} MB (target <= 500 MB)`);
  await Deno.remove(cfg, { recursive: true });
} finally {
  await Deno.remove(home, { recursive: true }).catch(() => {});
}
