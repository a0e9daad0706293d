/**
 * Warm start to "agent ready for exec" against the engine's floor, measured
 * side by side and interleaved in one run (images cached):
 *
 *   floor:  two `docker network create` in parallel, then the bundle and
 *           agent containers started in parallel (`docker run -d`) from the
 *           same images: the engine work any two-container bottle needs.
 *   bottle: `bottle start --detach`, until the agent is ready for exec.
 *
 * Also `bottle exec <b> -- true` against `docker exec <agent> true`, and
 * `bottle stop`. Targets: start at most 1.5x the floor and under 1.1 s;
 * exec within 1.2x of docker exec; stop under 0.8 s. Also reports the agent
 * image's size (target: at most 500 MB).
 */
import { fileURLToPath } from "node:url";
import { run } from "../src/proc/runner.ts";
import { buildPipelockStandinImage } from "../tests/fakes/pipelock_standin_image.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "7");
const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

const home = await Deno.makeTempDir({ prefix: "bottle-bench-" });
const env: Record<string, string> = {
  HOME: home,
  XDG_STATE_HOME: `${home}/state`,
  XDG_CACHE_HOME: `${home}/cache`,
  BOTTLE_PIPELOCK_IMAGE: Deno.env.get("BOTTLE_PIPELOCK_IMAGE") ?? await buildPipelockStandinImage(),
  NO_COLOR: "1",
  ...(Deno.env.get("BOTTLE_BUILD_CA_CERTS")
    ? { BOTTLE_BUILD_CA_CERTS: Deno.env.get("BOTTLE_BUILD_CA_CERTS")! }
    : {}),
};
const bottle = (args: string[]) =>
  run([Deno.execPath(), "run", "--allow-all", MAIN, ...args], { env });
const docker = (args: string[]) => run(["docker", ...args]);

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return (performance.now() - t) / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(" ");

async function floor(i: number, agentImage: string, bundleImage: string): Promise<number> {
  const n = `bench-floor-${i}`;
  const t = await timed(async () => {
    await Promise.all([
      docker(["network", "create", "--internal", `${n}-int`]),
      docker(["network", "create", `${n}-out`]),
    ]);
    await Promise.all([
      docker([
        "run",
        "-d",
        "--name",
        `${n}-bundle`,
        "--network",
        `${n}-out`,
        "--entrypoint",
        "sleep",
        bundleImage,
        "infinity",
      ]),
      docker([
        "run",
        "-d",
        "--name",
        `${n}-agent`,
        "--network",
        `${n}-int`,
        "--init",
        agentImage,
        "sleep",
        "infinity",
      ]),
    ]);
  });
  return t;
}

async function removeFloor(i: number): Promise<void> {
  const n = `bench-floor-${i}`;
  await docker(["rm", "-f", `${n}-bundle`, `${n}-agent`]);
  await docker(["network", "rm", `${n}-int`, `${n}-out`]);
}

try {
  const [agentImage, bundleImage] = (await bottle(["build"])).stdout.trim().split("\n") as [
    string,
    string,
  ];
  // One start and stop first, so caches (the forwarder, the bundle script) are warm.
  await bottle(["start", "--detach", "--name", "warm"]);
  await bottle(["stop", "claude-warm"]);

  const tFloor: number[] = [];
  const tStart: number[] = [];
  const tExec: number[] = [];
  const tDockerExec: number[] = [];
  const tStop: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate which goes first, so neither always runs on a just-quieted engine.
    const pair = [
      async () => tFloor.push(await floor(i, agentImage, bundleImage)),
      async () => tStart.push(await timed(() => bottle(["start", "--detach", "--name", `b${i}`]))),
    ];
    if (i % 2) pair.reverse();
    for (const step of pair) await step();
    for (let k = 0; k < 3; k++) {
      tExec.push(await timed(() => bottle(["exec", `claude-b${i}`, "--", "true"])));
      tDockerExec.push(await timed(() => docker(["exec", `bottle-claude-b${i}-agent`, "true"])));
    }
    tStop.push(await timed(() => bottle(["stop", `claude-b${i}`])));
    await removeFloor(i);
  }
  const s = median(tStart);
  const f = median(tFloor);
  const e = median(tExec);
  const de = median(tDockerExec);
  console.log(`warm start (median of ${ROUNDS}, interleaved with the engine floor):`);
  console.log(
    `  bottle ${s.toFixed(2)} s, floor ${f.toFixed(2)} s, ratio ${
      (s / f).toFixed(2)
    }x (target <= 1.5x and < 1.1 s)`,
  );
  console.log(`  bottle runs: ${fmt(tStart)}`);
  console.log(`  floor runs:  ${fmt(tFloor)}`);
  console.log(
    `exec -- true (median of ${tExec.length}): bottle ${e.toFixed(3)} s, docker exec ${
      de.toFixed(3)
    } s, ratio ${(e / de).toFixed(2)}x (target <= 1.2x)`,
  );
  console.log(`stop (median of ${ROUNDS}): ${median(tStop).toFixed(2)} s (target < 0.8 s)`);
  console.log(`  stop runs: ${fmt(tStop)}`);
  const size = Number(
    (await run(["docker", "image", "inspect", "--format", "{{.Size}}", agentImage])).stdout,
  );
  console.log(`agent image ${agentImage}: ${(size / 1e6).toFixed(0)} MB (target <= 500 MB)`);
  const load = await Deno.readTextFile("/proc/loadavg").catch(() => "?");
  console.log(`load average at the end: ${load.split(" ").slice(0, 3).join(" ")}`);
} finally {
  await run([
    "docker",
    "rm",
    "-f",
    ...Array.from({ length: ROUNDS }, (_, i) => `bench-floor-${i}-agent`),
  ], {
    check: false,
  });
  await Deno.remove(home, { recursive: true }).catch(() => {});
}
