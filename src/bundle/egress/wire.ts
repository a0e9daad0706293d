/**
 * One byte-stream interface over the two socket kinds egress holds: node
 * sockets on the agent side (only `node:tls` can terminate TLS on a socket
 * that was accepted as plain TCP, which a CONNECT MITM needs) and Deno
 * connections on the upstream side (`Deno.startTls` verifies with extra CAs
 * on top of the root store). Everything above this file sees `Wire` only.
 *
 * Plain tunnels would be a little cheaper with the agent accepted by
 * `Deno.listen` (no node stream per chunk), but then routed hosts need
 * `node:tls` over a JS stream wrapping the `Deno.Conn`, which costs more than
 * the tunnel saves; Deno has no server-side `startTls`.
 */
import type { Duplex } from "node:stream";

export interface Wire {
  /** The next chunk, or null at end of stream. Chunks are never reused by the wire. */
  read(): Promise<Uint8Array | null>;
  /**
   * Reads into `buf`: the byte count (at least one), or null at end of stream.
   * Optional: a wire that can fill the caller's buffer spares body and tunnel
   * copies an allocation per chunk (see `BufferedWire.copyTo`). Node sockets
   * hand out buffers of their own, so `NodeWire` has none.
   */
  readInto?(buf: Uint8Array): Promise<number | null>;
  /**
   * Writes all of `chunk`, resolving once the socket can take more
   * (backpressure) and the wire no longer holds `chunk`: the caller may then
   * reuse its buffer.
   */
  write(chunk: Uint8Array): Promise<void>;
  /** Half-closes: no more writes, reads go on. */
  closeWrite(): Promise<void>;
  /** Closes both directions now; idempotent. */
  close(): void;
}

const READ_SIZE = 64 * 1024;
/** How long a closed agent connection may wait for the peer to close its side. */
const LINGER_MS = 5_000;

/** A node `net.Socket` or `tls.TLSSocket`, read in paused mode so it can later be handed to TLS. */
export class NodeWire implements Wire {
  readonly socket: Duplex;
  #ended = false;
  #closed = false;
  #error: Error | undefined;
  #detached = false;
  #wake: (() => void) | undefined;
  readonly #notify = () => {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  };
  readonly #onEnd = () => {
    this.#ended = true;
    this.#notify();
  };
  readonly #onClose = () => {
    this.#closed = true;
    this.#notify();
  };
  readonly #onError = (err: Error) => {
    this.#error ??= err;
    this.#notify();
  };

  constructor(socket: Duplex) {
    this.socket = socket;
    // A 'readable' listener alone puts the socket in paused mode; calling
    // pause() first stops Deno's node compat from ever emitting 'readable'.
    socket.on("readable", this.#notify);
    socket.on("end", this.#onEnd);
    socket.on("close", this.#onClose);
    socket.on("error", this.#onError);
  }

  async read(): Promise<Uint8Array | null> {
    for (;;) {
      const chunk = this.socket.read() as Uint8Array | null;
      if (chunk !== null) return chunk;
      if (this.#error) throw this.#error;
      if (this.#ended || this.#closed) return null;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /**
   * Resolves on the write's callback, when node has handed `chunk` to the
   * socket: node keeps a reference to a queued chunk, and callers reuse
   * their buffers. One write in flight at a time is also the backpressure.
   */
  write(chunk: Uint8Array): Promise<void> {
    if (chunk.length === 0) return Promise.resolve();
    const s = this.socket;
    if (this.#error) return Promise.reject(this.#error);
    if (s.destroyed || s.writableEnded) {
      return Promise.reject(new Error("Write to a closed connection"));
    }
    return new Promise<void>((resolve, reject) => {
      // A socket torn down under a queued write may never call back.
      const closed = () => reject(this.#error ?? new Error("Connection closed while writing"));
      s.once("close", closed);
      s.write(chunk, (err?: Error | null) => {
        s.off("close", closed);
        if (err) reject(err);
        else resolve();
      });
    });
  }

  closeWrite(): Promise<void> {
    if (!this.socket.destroyed && !this.socket.writableEnded) this.socket.end();
    return Promise.resolve();
  }

  /**
   * Ends the connection gracefully: destroy() would discard writes node still
   * holds, cutting off the tail of a response sent just before closing. A
   * peer that never closes its side is cut off after a short linger.
   */
  close(): void {
    const s = this.socket;
    // Once detached the TLS layer owns the socket and closes it in order.
    if (s.destroyed || this.#detached) return;
    if (!s.writableEnded) s.end();
    const timer = setTimeout(() => s.destroy(), LINGER_MS);
    Deno.unrefTimer(timer);
    s.once("close", () => clearTimeout(timer));
  }

  /**
   * Stops reading and returns the socket, for wrapping in TLS. The socket must
   * hold no unread bytes: the TLS layer reads from the handle, not from us.
   */
  detach(): Duplex {
    const s = this.socket;
    if (s.readableLength > 0) {
      throw new Error("Client sent data before the CONNECT tunnel was established");
    }
    this.#detached = true;
    s.off("readable", this.#notify);
    s.off("end", this.#onEnd);
    s.off("close", this.#onClose);
    s.off("error", this.#onError);
    // The TLS layer reports failures on its own socket; an 'error' here with
    // no listener at all would crash the daemon.
    s.on("error", () => {});
    return s;
  }
}

/** A `Deno.Conn` (or `Deno.TlsConn`) toward the upstream proxy. */
export class DenoWire implements Wire {
  readonly conn: Deno.Conn;
  #closed = false;
  readonly #scratch = new Uint8Array(READ_SIZE);

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  async read(): Promise<Uint8Array | null> {
    const buf = this.#scratch;
    const n = await this.readInto(buf);
    // A copy of what arrived: a TLS read often fills a quarter of the
    // buffer, and allocating a fresh 64 KiB per read costs more than copying.
    return n === null ? null : buf.slice(0, n);
  }

  async readInto(buf: Uint8Array): Promise<number | null> {
    if (this.#closed) return null;
    try {
      return await this.conn.read(buf);
    } catch (err) {
      // Many servers close TLS without close_notify; HTTP framing, not TLS,
      // decides whether a message was complete.
      if (this.#closed || isEofLike(err)) return null;
      throw err;
    }
  }

  async write(chunk: Uint8Array): Promise<void> {
    let off = 0;
    while (off < chunk.length) off += await this.conn.write(chunk.subarray(off));
  }

  async closeWrite(): Promise<void> {
    try {
      await this.conn.closeWrite();
    } catch {
      // Already closed: nothing left to half-close.
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

function isEofLike(err: unknown): boolean {
  return err instanceof Deno.errors.UnexpectedEof || err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.Interrupted;
}
