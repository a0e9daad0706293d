/**
 * The bundle's init (PID 1 of the bundle container): reads its start input
 * (config files and secrets, on stdin), starts the daemons the plan
 * selected, says "ready" once all answer their health checks, serves an
 * aggregate health endpoint on loopback, forwards SIGTERM/SIGINT, and exits
 * non-zero as soon as any daemon dies: nothing is restarted silently, so the
 * host sees a dead bundle instead of a half-working one.
 */
import {
  BUNDLE_CONFIG_DIR,
  BUNDLE_MANIFEST,
  BUNDLE_PORTS,
  type BundleManifest,
  parseBundleManifest,
  READY_LINE,
} from "./bundle_manifest.ts";
import { type DaemonSpec, daemonSpecs, secretsFor, type SelfCommand } from "./daemons.ts";
import { spawn, type Spawned } from "../../proc/runner.ts";
import { readStartInput } from "./start_input.ts";
import { registerSecret } from "../../proc/secrets.ts";

const HEALTH_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5_000;

interface Running {
  spec: DaemonSpec;
  child: Spawned;
}

export interface InitOptions {
  /** Read config files and secrets from stdin first (how the host starts a bundle). */
  startInput?: boolean;
  configDir?: string;
  stdin?: ReadableStream<Uint8Array>;
}

export async function runInit(self: SelfCommand, opts: InitOptions = {}): Promise<number> {
  const configDir = opts.configDir ?? BUNDLE_CONFIG_DIR;
  // egress is in every bundle and takes a while to load its code: started
  // first, it loads while the start input arrives, then waits for its secrets.
  const early = opts.startInput ? startWaiting(earlyEgress(self)) : undefined;
  let secrets: Record<string, string> = {};
  try {
    if (opts.startInput) {
      const input = await readStartInput(opts.stdin ?? Deno.stdin.readable);
      for (const [name, data] of input.files) {
        if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`Bad config file name "${name}"`);
        await Deno.writeFile(`${configDir}/${name}`, data, { mode: 0o400, createNew: true });
      }
      secrets = input.secrets;
      for (const v of Object.values(secrets)) registerSecret(v);
    }
  } catch (err) {
    early?.child.kill("SIGKILL");
    throw err;
  }
  const manifestPath = configDir === BUNDLE_CONFIG_DIR
    ? BUNDLE_MANIFEST
    : `${configDir}/bundle.json`;
  const manifest: BundleManifest = parseBundleManifest(
    JSON.parse(await Deno.readTextFile(manifestPath)),
  );
  const specs = daemonSpecs(manifest, self);
  const running: Running[] = specs.map((spec) => {
    if (early && spec.secretsOnStdin && sameArgv(spec.argv, early.argv)) {
      early.send(secretsFor(spec, secrets));
      return { spec, child: early.child };
    }
    // Daemons log straight to the container's output, which `docker logs`
    // shows. Only the daemons that need secrets get them, on their stdin.
    return {
      spec,
      child: spawn(spec.argv, {
        stdout: "inherit",
        stderr: "inherit",
        ...(spec.secretsOnStdin ? { stdin: secretsFor(spec, secrets) } : {}),
      }),
    };
  });
  if (early && !running.some((r) => r.child === early.child)) early.child.kill("SIGKILL");
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

/**
 * egress's argv, as daemonSpecs gives it for a bundle on the usual ports
 * (every bottle's): started before the manifest arrives, and used if the
 * manifest's spec is the same.
 */
export function earlyEgress(self: SelfCommand): string[] {
  return daemonSpecs({ bottle: "", daemons: ["egress"], ports: BUNDLE_PORTS }, self)[0]!.argv;
}

/** A daemon started before its secrets exist: they go on its stdin once known. */
function startWaiting(
  argv: string[],
): { argv: string[]; child: Spawned; send(b: Uint8Array): void } {
  const pipe = new TransformStream<Uint8Array, Uint8Array>();
  const child = spawn(argv, { stdout: "inherit", stderr: "inherit", stdin: pipe.readable });
  const writer = pipe.writable.getWriter();
  return {
    argv,
    child,
    send(b) {
      writer.write(b).then(() => writer.close()).catch(() => {});
    },
  };
}

function sameArgv(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
