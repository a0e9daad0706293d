/**
 * The byte mover under tunnels and message bodies. Reads fill one of two
 * reused buffers while earlier bytes are being written, and whatever arrived
 * during a write goes out in the next write, together. Nothing is held back
 * to fill a buffer: a write starts as soon as bytes are there and the
 * previous write is done, so a slow trickle (SSE) flows as it comes, and a
 * fast stream is written in large pieces. Large pieces matter most toward
 * the agent: its TLS socket (node:tls) costs far more per write than per
 * byte, and a TLS read from upstream yields one 16 KiB record at a time.
 */

/**
 * Each buffer's size: large reads and writes mean fewer system calls per
 * byte. A copy takes its second buffer only once the first is nearly full,
 * so a copy that moves little (an SSE stream, a small response) holds one.
 */
const BUFFER_SIZE = 256 * 1024;
/** Buffers kept for the next copy, so memory follows the copies in progress. */
const POOL_MAX = 16;
const pool: Uint8Array[] = [];
/** A read is never offered less room than this: it switches buffers instead. */
const MIN_READ = 16 * 1024;

/** Reads into `buf`: the byte count (at least one), or null at end of stream. */
export type ReadInto = (buf: Uint8Array) => Promise<number | null>;
/** Writes all of `chunk`, resolving once `chunk` is no longer needed by the writer. */
export type WriteAll = (chunk: Uint8Array) => Promise<void>;

interface Segment {
  buf: 0 | 1;
  start: number;
  end: number;
}

const FAILED = Symbol("failed");

/**
 * Copies up to `limit` bytes (`Infinity`: until end of stream) from `read` to
 * `write`, never reading past `limit`. At most one read and one write are in
 * flight; writes keep the order of reads. `progress.bytes` grows as writes
 * complete. Resolves once every byte read was written (fewer than `limit`
 * when the stream ended first). A failed write rejects at once, without
 * waiting for a read in flight (a peer that sends nothing more would hold it
 * forever); the caller then closes the source.
 */
export async function relay(
  read: ReadInto,
  write: WriteAll,
  limit: number,
  progress: { bytes: number },
): Promise<void> {
  const buffers: Buffers = [takeBuffer(), undefined];
  await copyThrough(read, write, limit, progress, buffers);
  // Only after a clean end: an abandoned read may still land in the buffers.
  for (const b of buffers) if (b && pool.length < POOL_MAX) pool.push(b);
}

type Buffers = [Uint8Array, Uint8Array | undefined];

function takeBuffer(): Uint8Array {
  return pool.pop() ?? new Uint8Array(BUFFER_SIZE);
}

async function copyThrough(
  read: ReadInto,
  write: WriteAll,
  limit: number,
  progress: { bytes: number },
  buffers: Buffers,
): Promise<void> {
  /** Read, not yet written; adjacent segments of one buffer are merged. */
  const queue: Segment[] = [];
  /** Bytes of each buffer queued or being written: a buffer is refilled only at zero. */
  const held = [0, 0];
  let writing = false;
  let failure: { error: unknown } | undefined;
  const failed = Promise.withResolvers<typeof FAILED>();
  /** Wakes the reader when a write ends (it may be waiting for room or for the end). */
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };

  const startWrite = () => {
    const seg = failure ? undefined : queue.shift();
    if (!seg) return;
    writing = true;
    write(buffers[seg.buf]!.subarray(seg.start, seg.end)).then(
      () => {
        writing = false;
        held[seg.buf]! -= seg.end - seg.start;
        progress.bytes += seg.end - seg.start;
        startWrite();
        notify();
      },
      (error: unknown) => {
        writing = false;
        failure ??= { error };
        failed.resolve(FAILED);
        notify();
      },
    );
  };
  const writeEnded = () => new Promise<void>((resolve) => (wake = resolve));

  let fill: 0 | 1 = 0;
  let buf: Uint8Array = buffers[0];
  let off = 0;
  let total = 0;
  while (total < limit && !failure) {
    if (buf.length - off < MIN_READ) {
      const next: 0 | 1 = fill === 0 ? 1 : 0;
      while (held[next]! > 0 && !failure) await writeEnded();
      if (failure) break;
      fill = next;
      buf = buffers[next] ??= takeBuffer();
      off = 0;
    }
    const reading = read(buf.subarray(off, Math.min(buf.length, off + (limit - total))));
    const n = await Promise.race([reading, failed.promise]);
    if (n === FAILED) {
      reading.catch(() => {});
      break;
    }
    if (n === null) break;
    const last: Segment | undefined = queue[queue.length - 1];
    if (last && last.buf === fill && last.end === off) last.end += n;
    else queue.push({ buf: fill, start: off, end: off + n });
    held[fill]! += n;
    off += n;
    total += n;
    if (!writing) startWrite();
  }
  while ((writing || queue.length > 0) && !failure) await writeEnded();
  if (failure) throw failure.error;
}
