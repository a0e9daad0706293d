/**
 * Entry point of the egress daemon inside the bundle container:
 * `deno run ... src/bundle/egress/main.ts --config /path/egress.json
 * [--secrets-from-stdin]`. Route secrets arrive as a JSON object on stdin
 * (the bundle's init writes them there; they are in no environment), or, for
 * tests, in this process's environment (named by the config); never on argv.
 * With them on stdin, egress can be started before its config exists: it
 * loads its code, then waits for stdin, then reads the config. SIGTERM
 * closes the listener and exits 0.
 */
import { redact } from "../../proc/secrets.ts";
import { loadEgressConfig } from "./config.ts";
import { startEgress } from "./server.ts";

function usage(): never {
  console.error("Usage: egress --config FILE [--secrets-from-stdin]");
  Deno.exit(2);
}

export async function main(args: string[]): Promise<number> {
  let configPath: string | undefined;
  let secretsFromStdin = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--config") configPath = args[++i];
    else if (a?.startsWith("--config=")) configPath = a.slice("--config=".length);
    else if (a === "--secrets-from-stdin") secretsFromStdin = true;
    else usage();
  }
  if (!configPath) usage();
  let getEnv: ((name: string) => string | undefined) | undefined;
  if (secretsFromStdin) {
    const secrets = JSON.parse(await new Response(Deno.stdin.readable).text()) as Record<
      string,
      string
    >;
    getEnv = (name) => secrets[name];
  }

  // Listen for signals before announcing readiness: a supervisor may send
  // SIGTERM the moment it sees the "listening" line.
  const stopped = Promise.withResolvers<void>();
  const onSignal = () => stopped.resolve();
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  let server;
  try {
    const config = await loadEgressConfig(configPath);
    server = await startEgress(config, getEnv ? { getEnv } : {});
  } catch (err) {
    console.error(`egress: ${redact(err instanceof Error ? err.message : String(err))}`);
    return 2;
  }
  console.error(`egress: listening on ${server.addr.hostname}:${server.addr.port}`);
  // A CA that cannot be loaded ends the daemon (and so the bundle): nothing is served half-working.
  server.caLoaded.catch((err) => {
    console.error(`egress: ${redact(err instanceof Error ? err.message : String(err))}`);
    Deno.exit(2);
  });
  await stopped.promise;
  await Promise.race([server.close(), new Promise((r) => setTimeout(r, 2000))]);
  console.error("egress: stopped");
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
