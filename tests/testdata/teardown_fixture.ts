/**
 * A launch in miniature for the teardown test: three steps, each registering
 * its release on the stack, then waiting. The test sends a signal during a
 * chosen step and reads the log this writes.
 */
import { installSignalHandlers } from "../../src/proc/signals.ts";
import { delay } from "../../src/proc/abortable.ts";
import { CancelledError } from "../../src/errors.ts";

const [logFile, waitAt, failAt] = Deno.args as [string, string, string | undefined];
const log = (line: string) => Deno.writeTextFileSync(logFile, line + "\n", { append: true });
const signals = installSignalHandlers();
let code = 0;
try {
  await using stack = new AsyncDisposableStack();
  for (const step of ["network", "bundle", "agent"]) {
    log(`create ${step}`);
    stack.defer(async () => {
      await delay(50, new AbortController().signal);
      log(`release ${step}`);
    });
    console.log(`ready ${step}`);
    if (failAt === step) throw new Error(`step ${step} failed`);
    if (waitAt === step) await delay(30_000, signals.signal);
  }
} catch (err) {
  code = err instanceof CancelledError ? err.exitCode : 1;
  log(`exit ${code}`);
} finally {
  signals.dispose();
}
Deno.exit(code);
