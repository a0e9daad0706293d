/**
 * Entry point of the `bottle` binary. SIGINT/SIGTERM abort the shared signal
 * so that whatever is running tears down what it made, exactly once.
 */
import { runCli } from "./src/cli/app.ts";
import { defaultContext } from "./src/cli/context.ts";
import { installSignalHandlers } from "./src/proc/signals.ts";

if (import.meta.main) {
  const signals = installSignalHandlers();
  const code = await runCli(Deno.args, defaultContext(signals.signal));
  signals.dispose();
  Deno.exit(code);
}
