/**
 * The host relay's process: `relay_main.ts DIR` under the deno CLI, or
 * `bottle __relay DIR` in the compiled binary (main.ts). It reads
 * `DIR/relay.json`, writes its pid to `DIR/relay.pid`, says `ready` on
 * stdout once every socket listens (and nothing after: its starter stops
 * reading), and serves until SIGTERM or until its bottle is gone.
 */
import { join } from "node:path";
import { RELAY_LOG, RELAY_PID, RELAY_SPEC, type RelaySpec, serveRelay } from "./host_relay.ts";

export async function relayMain(args: string[]): Promise<number> {
  const [dir] = args;
  if (!dir || args.length !== 1) {
    console.error("usage: relay DIR");
    return 2;
  }
  const logFile = join(dir, RELAY_LOG);
  const log = (line: string) => {
    try {
      Deno.writeTextFileSync(logFile, `${new Date().toISOString()} ${line}\n`, {
        append: true,
        mode: 0o600,
      });
    } catch { /* the dir is gone: nobody reads it any more */ }
  };
  const stop = new AbortController();
  for (const sig of ["SIGTERM", "SIGHUP", "SIGINT"] as const) {
    Deno.addSignalListener(sig, () => stop.abort());
  }
  try {
    const spec = JSON.parse(await Deno.readTextFile(join(dir, RELAY_SPEC))) as RelaySpec;
    await Deno.writeTextFile(join(dir, RELAY_PID), `${Deno.pid}\n`, { mode: 0o600 });
    let started = false;
    await serveRelay(dir, spec, {
      signal: stop.signal,
      log,
      ready: () => {
        started = true;
        Deno.stdout.writeSync(new TextEncoder().encode("ready\n"));
        Deno.stdout.close();
      },
    });
    // Its bottle is gone (no stop reached it): its dir goes with it. Stopped
    // by a signal, the stopper removes the dir once it has seen it end.
    if (started && !stop.signal.aborted) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    return 0;
  } catch (err) {
    const message = `relay: ${(err as Error).message}`;
    log(message);
    try {
      console.error(message);
    } catch { /* nobody listens any more */ }
    return 1;
  } finally {
    await Deno.remove(join(dir, RELAY_PID)).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await relayMain(Deno.args));
