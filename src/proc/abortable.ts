/**
 * Waits that give up when the launch is cancelled, so that a SIGINT during
 * any wait (health, a poll, a sleep) goes straight to teardown.
 */
import { CancelledError } from "../errors.ts";

/** Resolves with `promise`, or rejects with the signal's reason as soon as it aborts. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(reason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(reason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Sleeps `ms`, or until the signal aborts (then rejects). */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return abortable(new Promise<void>((r) => (timer = setTimeout(r, ms))), signal)
    .finally(() => clearTimeout(timer));
}

function reason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new CancelledError("SIGINT");
}
