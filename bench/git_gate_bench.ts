/**
 * The workspace through the git gate against plain git, side by side and
 * interleaved in one run, on a generated repository (BENCH_COMMITS commits,
 * default 20000, each adding ~5 KB of incompressible data: a ~100 MB pack):
 *
 *   clone:  `git clone` inside a running bottle from the gate (smart HTTP
 *           through the agent's relay to the bundle) against `git clone
 *           --no-local` of the same repository on the host (the pack
 *           transport, like for like; a plain local clone only hardlinks
 *           and is reported too). Target: at most 1.5x.
 *   start:  `bottle start --detach` inside the repository (the provisioning
 *           clone included) against `--workspace none`.
 *   push:   a one-line commit pushed through the gate (policy hooks and the
 *           landing in the host repository included) against `git push` to
 *           a local bare repository, both timed inside the bottle. Target:
 *           under 300 ms added.
 */
import { run } from "../src/proc/runner.ts";
import { bottleEnv, MAIN } from "../tests/helpers/bottle_env.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? "3");
const PUSHES = Number(Deno.env.get("BENCH_PUSHES") ?? "15");
const COMMITS = Number(Deno.env.get("BENCH_COMMITS") ?? "20000");

// The tests' own sandbox: a private HOME and XDG dirs, the pipelock stand-in.
const be = await bottleEnv(
  Deno.env.get("BOTTLE_PIPELOCK_IMAGE")
    ? { BOTTLE_PIPELOCK_IMAGE: Deno.env.get("BOTTLE_PIPELOCK_IMAGE")! }
    : {},
);
const env = be.env;
const home = env.HOME!;
const repo = `${home}/repo`;
const bottle = (args: string[]) =>
  run([Deno.execPath(), "run", "--allow-all", MAIN, ...args], { env, cwd: repo });

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return (performance.now() - t) / 1000;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(" ");

/** COMMITS commits through `git fast-import`, each adding a file of random base64-free bytes. */
async function generateRepo() {
  await Deno.mkdir(repo);
  await run(["git", "-C", repo, "init", "--quiet", "--initial-branch=main"]);
  await run(["git", "-C", repo, "config", "user.name", "Bench"]);
  await run(["git", "-C", repo, "config", "user.email", "bench@example.com"]);
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (let i = 1; i <= COMMITS; i++) {
    const data = new Uint8Array(5 * 1024);
    crypto.getRandomValues(data);
    const msg = enc.encode(`commit ${i}\n`);
    parts.push(enc.encode(
      `commit refs/heads/main\ncommitter Bench <bench@example.com> ${
        1700000000 + i
      } +0000\ndata ${msg.length}\n`,
    ));
    parts.push(msg);
    parts.push(enc.encode(`M 100644 inline data/${i % 500}/${i}.bin\ndata ${data.length}\n`));
    parts.push(data, enc.encode("\n"));
  }
  await run(["git", "-C", repo, "fast-import", "--quiet"], {
    stdin: new Blob(parts as BlobPart[]).stream(),
  });
  await Deno.writeTextFile(
    `${repo}/.git/info/exclude`,
    "bottle.yaml\n",
  );
  await Deno.writeTextFile(
    `${repo}/bottle.yaml`,
    "version: 1\nagents:\n  coder:\n    anthropic: none\n",
  );
  await run(["git", "-C", repo, "repack", "-a", "-d", "-q"]);
  await run(["git", "-C", repo, "checkout", "-q", "main"]);
  const size = (await run(["du", "-sm", `${repo}/.git/objects/pack`])).stdout.split("\t")[0];
  console.log(`repository: ${COMMITS} commits, pack ${size} MB`);
}

/** Milliseconds of each push, timed inside the bottle, to the gate and to a local bare repo. */
async function pushes(name: string): Promise<{ gate: number[]; local: number[] }> {
  const script = `set -e
cd /workspace
git init -q --bare /tmp/bare.git
git checkout -q -b bench-push
ms() { echo $(( $(date +%s%N) / 1000000 )); }
for i in $(seq 1 ${PUSHES}); do
  echo "$i" > pushed.txt; git add pushed.txt; git commit -q -m "push $i"
  t0=$(ms); git push -q origin HEAD 2>/dev/null; t1=$(ms)
  git push -q /tmp/bare.git HEAD; t2=$(ms)
  echo "$((t1 - t0)) $((t2 - t1))"
done`;
  const r = await bottle(["exec", name, "--", "sh", "-c", script]);
  const rows = r.stdout.trim().split("\n").map((l) => l.split(" ").map(Number));
  // The first push of each creates the branch (and warms caches): left out.
  const rest = rows.slice(1);
  return { gate: rest.map((x) => x[0]!), local: rest.map((x) => x[1]!) };
}

try {
  await generateRepo();
  console.log("building images (cached after the first run)...");
  await bottle(["build", "coder"]);
  await bottle(["start", "coder", "--detach", "--name", "warm", "--workspace", "none"]);
  await bottle(["stop", "coder-warm"]);

  const host: number[] = [], hostLocal: number[] = [], gate: number[] = [];
  const startGit: number[] = [], startNone: number[] = [];
  const pushGate: number[] = [], pushLocal: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    startNone.push(
      await timed(() =>
        bottle(["start", "coder", "--detach", "--name", `n${i}`, "--workspace", "none"])
      ),
    );
    await bottle(["stop", `coder-n${i}`]);
    startGit.push(await timed(() => bottle(["start", "coder", "--detach", "--name", `g${i}`])));
    const name = `coder-g${i}`;
    host.push(await timed(() => run(["git", "clone", "-q", "--no-local", repo, `${home}/c${i}`])));
    hostLocal.push(await timed(() => run(["git", "clone", "-q", repo, `${home}/l${i}`])));
    gate.push(
      await timed(() =>
        bottle([
          "exec",
          name,
          "--",
          "git",
          "clone",
          "-q",
          "http://127.0.0.1:8080/workspace.git",
          "/tmp/c",
        ])
      ),
    );
    const p = await pushes(name);
    pushGate.push(...p.gate);
    pushLocal.push(...p.local);
    await bottle(["stop", name]);
    await Deno.remove(`${home}/c${i}`, { recursive: true });
    await Deno.remove(`${home}/l${i}`, { recursive: true });
  }

  console.log(`clone, host --no-local (s): ${fmt(host)}  median ${median(host).toFixed(2)}`);
  console.log(
    `clone, host local (s):      ${fmt(hostLocal)}  median ${median(hostLocal).toFixed(2)}`,
  );
  console.log(`clone, bottle via gate (s): ${fmt(gate)}  median ${median(gate).toFixed(2)}`);
  console.log(
    `  gate / host --no-local: ${(median(gate) / median(host)).toFixed(2)}x (target <= 1.5x)`,
  );
  console.log(
    `start --workspace none (s): ${fmt(startNone)}  median ${median(startNone).toFixed(2)}`,
  );
  console.log(
    `start, workspace git (s):   ${fmt(startGit)}  median ${median(startGit).toFixed(2)}`,
  );
  console.log(`  added by the workspace: ${(median(startGit) - median(startNone)).toFixed(2)} s`);
  const mg = median(pushGate), ml = median(pushLocal);
  console.log(`push via gate (ms, median of ${pushGate.length}): ${mg}`);
  console.log(`push to local bare (ms, median of ${pushLocal.length}): ${ml}`);
  console.log(`  added latency: ${mg - ml} ms (target < 300 ms); ratio ${(mg / ml).toFixed(2)}x`);
} finally {
  for (const n of ["warm", "n0", "n1", "n2", "g0", "g1", "g2"]) {
    await run([Deno.execPath(), "run", "--allow-all", MAIN, "stop", `coder-${n}`], {
      env,
      check: false,
    });
  }
  await be[Symbol.asyncDispose]();
}
