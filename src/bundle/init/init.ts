/**
 * The bundle's init (PID 1 of the bundle container): starts the daemons the
 * plan selected, says "ready" once all answer their health checks, serves an
 * aggregate health endpoint on loopback, forwards SIGTERM/SIGINT, and exits
 * non-zero as soon as any daemon dies: nothing is restarted silently, so the
 * host sees a dead bundle instead of a half-working one.
 */
import {
  BUNDLE_MANIFEST,
  type BundleManifest,
  parseBundleManifest,
  READY_LINE,
} from "./bundle_manifest.ts";
import { type DaemonSpec, daemonSpecs, type SelfCommand } from "./daemons.ts";
import { spawn, type Spawned } from "../../proc/runner.ts";

const HEALTH_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5_000;

interface Running {
  spec: DaemonSpec;
  child: Spawned;
}

export async function runInit(self: SelfCommand, manifestPath = BUNDLE_MANIFEST): Promise<number> {
  const manifest: BundleManifest = parseBundleManifest(
    JSON.parse(await Deno.readTextFile(manifestPath)),
  );
  const specs = daemonSpecs(manifest, self);
  const running: Running[] = specs.map((spec) => ({
    spec,
    // Daemons log straight to the container's output, which `docker logs` shows.
    child: spawn(spec.argv, { stdout: "inherit", stderr: "inherit" }),
  }));
  log(`started ${specs.map((s) => s.name).join(", ")} for ${manifest.bottle}`);

  let stopping = false;
  const stopAll = async () => {
    stopping = true;
    for (const r of running) r.child.kill("SIGTERM");
    const timer = setTimeout(
      () => running.forEach((r) => r.child.kill("SIGKILL")),
      STOP_GRACE_MS,
    );
    await Promise.allSettled(running.map((r) => r.child.status));
    clearTimeout(timer);
  };

  const firstExit = Promise.race(
    running.map((r) => r.child.status.then((s) => ({ name: r.spec.name, code: s.code }))),
  );
  const stopRequested = new Promise<string>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(sig, () => resolve(sig));
    }
  });

  const ready = waitHealthy(specs).then(() => console.log(READY_LINE));
  const health = Deno.serve(
    { hostname: "127.0.0.1", port: manifest.ports.health, onListen: () => {} },
    async () =>
      (await allHealthy(specs))
        ? new Response("ok\n")
        : new Response("unhealthy\n", { status: 503 }),
  );

  const outcome = await Promise.race([
    firstExit.then((e) => ({ kind: "died" as const, ...e })),
    stopRequested.then((sig) => ({ kind: "stop" as const, sig })),
    ready.then(
      () => new Promise<never>(() => {}),
      (err: Error) => ({ kind: "unready" as const, err }),
    ),
  ]);
  let code = 0;
  if (outcome.kind === "died") {
    if (!stopping) {
      log(`daemon ${outcome.name} exited with code ${outcome.code}: stopping the bundle`);
    }
    code = 1;
  } else if (outcome.kind === "unready") {
    log(outcome.err.message);
    code = 1;
  } else {
    log(`${outcome.sig}: stopping daemons`);
  }
  await stopAll();
  await health.shutdown();
  return code;
}

/** Every daemon at once: first until its port accepts (cheap to poll), then its health check. */
async function waitHealthy(specs: DaemonSpec[]): Promise<void> {
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  const until = async (s: DaemonSpec, check: () => Promise<boolean>) => {
    while (!(await check())) {
      if (Date.now() > deadline) {
        throw new Error(`daemon ${s.name} not healthy after ${HEALTH_TIMEOUT_MS} ms (${s.health})`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await Promise.all(specs.map(async (s) => {
    const url = new URL(s.health);
    await until(s, () => accepting(url.hostname, Number(url.port)));
    await until(s, () => healthy(s));
  }));
}

async function accepting(hostname: string, port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname, port })).close();
    return true;
  } catch {
    return false;
  }
}

async function allHealthy(specs: DaemonSpec[]): Promise<boolean> {
  return (await Promise.all(specs.map(healthy))).every(Boolean);
}

async function healthy(s: DaemonSpec): Promise<boolean> {
  try {
    const r = await fetch(s.health, { signal: AbortSignal.timeout(1000) });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}

function log(msg: string): void {
  console.error(`bottle-bundle: ${msg}`);
}
