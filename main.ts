/**
 * Entry point of the `bottle` binary. SIGINT/SIGTERM abort the shared signal
 * so that whatever is running tears down what it made, exactly once. The
 * hidden `__relay DIR` runs a smolmachines VM's host relay (the compiled
 * binary's way to start one; from source it is its own script).
 */
import { runCli } from "./src/cli/app.ts";
import { defaultContext } from "./src/cli/context.ts";
import { installSignalHandlers } from "./src/proc/signals.ts";
import { RELAY_SUBCOMMAND } from "./src/backends/smolvm/relay_process.ts";

if (import.meta.main) {
  if (Deno.args[0] === RELAY_SUBCOMMAND) {
    const { relayMain } = await import("./src/backends/smolvm/relay_main.ts");
    Deno.exit(await relayMain(Deno.args.slice(1)));
  }
  const signals = installSignalHandlers();
  const code = await runCli(Deno.args, defaultContext(signals.signal));
  signals.dispose();
  Deno.exit(code);
}
