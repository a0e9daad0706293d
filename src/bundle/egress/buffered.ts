/**
 * A `Wire` with a push-back buffer: HTTP parsing reads past the end of a head
 * or a chunk-size line, and those extra bytes belong to whoever reads next
 * (a body, the next pipelined request, or a raw tunnel after a 101).
 */
import { relay } from "./relay.ts";
import type { Wire } from "./wire.ts";

/** Thrown when a head or line is longer than its limit (maps to 431/400/502). */
export class LimitExceededError extends Error {
  override name = "LimitExceededError";
}

/** Thrown when the peer closed in the middle of a message. */
export class TruncatedError extends Error {
  override name = "TruncatedError";
}

export class BufferedWire implements Wire {
  readonly inner: Wire;
  #pending: Uint8Array[] = [];
  /** A read started while the connection sat idle (see `watchIdle`). */
  #inflight: Promise<Uint8Array | null> | undefined;
  #closedWhileIdle = false;

  constructor(inner: Wire) {
    this.inner = inner;
  }

  /** True when bytes were read from the socket but not consumed yet. */
  get hasPending(): boolean {
    return this.#pending.length > 0;
  }

  read(): Promise<Uint8Array | null> {
    const head = this.#pending.shift();
    if (head) return Promise.resolve(head);
    const inflight = this.#inflight;
    if (inflight) {
      this.#inflight = undefined;
      return inflight;
    }
    return this.inner.read();
  }

  /**
   * Starts a read on an idle keep-alive connection, so that a peer closing it
   * in the meantime (an idle timeout upstream) is noticed before the next
   * request is sent on it. Whatever the read returns goes to the next reader.
   */
  watchIdle(): void {
    if (this.#inflight || this.#pending.length > 0) return;
    const read = this.inner.read();
    this.#inflight = read;
    read.then(
      (c) => {
        if (c === null) this.#closedWhileIdle = true;
      },
      () => {
        this.#closedWhileIdle = true;
      },
    );
  }

  /** True when the peer closed (or broke) the connection while it was idle. */
  get closedWhileIdle(): boolean {
    return this.#closedWhileIdle;
  }

  /** Puts bytes back to be returned by the next read. */
  unshift(chunk: Uint8Array): void {
    if (chunk.length > 0) this.#pending.unshift(chunk);
  }

  /** At most `max` bytes (at least one), or null at end of stream. */
  async readAtMost(max: number): Promise<Uint8Array | null> {
    const chunk = await this.read();
    if (chunk === null || chunk.length <= max) return chunk;
    this.unshift(chunk.subarray(max));
    return chunk.subarray(0, max);
  }

  /**
   * Moves up to `limit` bytes (`Infinity`: to the end of the stream) to `to`
   * and returns how many; fewer than `limit` when the stream ended first.
   * `progress.bytes` grows with every completed write, for callers that
   * account for the bytes moved before a failure. Never reads past `limit`.
   */
  async copyTo(to: Wire, limit: number, progress = { bytes: 0 }): Promise<number> {
    const start = progress.bytes;
    const left = () => limit - (progress.bytes - start);
    // Bytes already taken from the socket (pushed back, or read while idle) go first.
    while (left() > 0 && (this.#pending.length > 0 || this.#inflight)) {
      const c = await this.readAtMost(left());
      if (c === null) return progress.bytes - start;
      await to.write(c);
      progress.bytes += c.length;
    }
    if (left() <= 0) return progress.bytes - start;
    const inner = this.inner;
    if (!inner.readInto) {
      // The socket hands out chunks of its own: write them as they come.
      for (let c = await this.readAtMost(left()); c !== null;) {
        await to.write(c);
        progress.bytes += c.length;
        if (left() <= 0) break;
        c = await this.readAtMost(left());
      }
      return progress.bytes - start;
    }
    const readInto = inner.readInto.bind(inner);
    await relay(readInto, (c) => to.write(c), left(), progress);
    return progress.bytes - start;
  }

  /**
   * Reads through the first blank line (CRLF CRLF, or bare LF LF) and returns
   * those bytes; null if the stream ended before any byte arrived.
   */
  async readHead(limit: number): Promise<Uint8Array | null> {
    return await this.#readUntil(findHeadEnd, limit, "head");
  }

  /** Reads through the next LF (a chunk-size or trailer line). */
  async readLine(limit: number): Promise<Uint8Array> {
    const line = await this.#readUntil(findLineEnd, limit, "line");
    if (line === null) throw new TruncatedError("Connection closed before a complete line");
    return line;
  }

  async #readUntil(
    find: (buf: Uint8Array, from: number) => number,
    limit: number,
    what: string,
  ): Promise<Uint8Array | null> {
    let buf: Uint8Array = new Uint8Array(0);
    for (;;) {
      const chunk = await this.read();
      if (chunk === null) {
        if (buf.length === 0) return null;
        throw new TruncatedError(`Connection closed in the middle of a ${what}`);
      }
      const from = Math.max(0, buf.length - 3);
      buf = concat(buf, chunk);
      const end = find(buf, from);
      // The limit holds however the bytes arrived: in one read or in many.
      if ((end >= 0 ? end : buf.length) > limit) {
        throw new LimitExceededError(`HTTP ${what} exceeds ${limit} bytes`);
      }
      if (end >= 0) {
        this.unshift(buf.subarray(end));
        return buf.subarray(0, end);
      }
    }
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.inner.write(chunk);
  }

  closeWrite(): Promise<void> {
    return this.inner.closeWrite();
  }

  close(): void {
    this.inner.close();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Index just past "\n\r\n" or "\n\n", searching from `from`; -1 if absent. */
function findHeadEnd(buf: Uint8Array, from: number): number {
  for (let i = from; i < buf.length; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

function findLineEnd(buf: Uint8Array, from: number): number {
  const i = buf.indexOf(0x0a, from);
  return i < 0 ? -1 : i + 1;
}
