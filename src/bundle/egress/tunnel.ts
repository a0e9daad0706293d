/**
 * Byte pumping for tunnels and upgraded connections: both directions at once,
 * half-closes passed on, and a failure on either side closing both.
 */
import type { BufferedWire } from "./buffered.ts";

export interface PipeResult {
  /** Bytes from `a` to `b`. */
  aToB: number;
  bToA: number;
  /** The first error seen, if the pipe did not end cleanly. */
  error?: Error;
}

/** Pumps until both directions ended, then closes both wires. */
export async function pipeBoth(a: BufferedWire, b: BufferedWire): Promise<PipeResult> {
  let failure: Error | undefined;
  const pump = async (from: BufferedWire, to: BufferedWire): Promise<number> => {
    const moved = { bytes: 0 };
    try {
      await from.copyTo(to, Infinity, moved);
      await to.closeWrite();
    } catch (err) {
      // A reset is how many clients end a connection they are done with.
      if (!isReset(err)) failure ??= err instanceof Error ? err : new Error(String(err));
      // One side broke: tear down both, or the other pump would wait forever.
      a.close();
      b.close();
    }
    return moved.bytes;
  };
  const [aToB, bToA] = await Promise.all([pump(a, b), pump(b, a)]);
  a.close();
  b.close();
  return { aToB, bToA, ...(failure ? { error: failure } : {}) };
}

function isReset(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ECONNRESET" || code === "EPIPE" || err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.BrokenPipe;
}
