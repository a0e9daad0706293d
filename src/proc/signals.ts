/**
 * SIGINT/SIGTERM become one AbortSignal. The first signal aborts (and so
 * starts teardown, which runs once because it lives in `await using`
 * scopes); later signals are reported but do not interrupt the teardown
 * already under way.
 */
import { CancelledError } from "../errors.ts";

export interface SignalHandlers {
  signal: AbortSignal;
  dispose(): void;
}

export function installSignalHandlers(): SignalHandlers {
  const controller = new AbortController();
  const listeners: [Deno.Signal, () => void][] = [];
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    const handler = () => {
      if (controller.signal.aborted) {
        Deno.stderr.writeSync(
          new TextEncoder().encode(`bottle: ${sig} again: still cleaning up\n`),
        );
        return;
      }
      controller.abort(new CancelledError(sig));
    };
    Deno.addSignalListener(sig, handler);
    listeners.push([sig, handler]);
  }
  return {
    signal: controller.signal,
    dispose() {
      for (const [sig, h] of listeners) Deno.removeSignalListener(sig, h);
    },
  };
}

/** Throws the CancelledError a signal carries, if it has fired. */
export function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) {
    throw signal.reason instanceof Error ? signal.reason : new CancelledError("SIGINT");
  }
}
