/**
 * Positioned reads from one open archive file. Deno has no pread, so every
 * read is a seek plus reads under a lock: one handle serves any number of
 * concurrent blob streams, it stays on the inode that was indexed even if the
 * path is replaced or removed, and closing it ends every stream it feeds.
 *
 * For serving, `fileTail` also hands out the file itself as a body that
 * `Deno.serve` pipes without running JS per chunk, when the path still names
 * the same file.
 */
import { createHash } from "node:crypto";
import { resolve } from "node:path";

/**
 * Largest piece read at once: bounds memory per stream, large enough to keep
 * syscalls rare. Served over HTTP, 64 KiB to 4 MiB measured alike within the
 * noise (64 KiB sometimes worse); the time goes to moving each chunk from JS
 * to the socket, which `fileTail` avoids.
 */
const CHUNK_BYTES = 1 << 20;

export class ArchiveFile implements Disposable {
  readonly path: string;
  /** Size in bytes when the file was opened. */
  readonly size: number;
  #file: Deno.FsFile;
  /** Absolute path, so a later change of working directory does not matter. */
  readonly #absolutePath: string;
  /** "dev:ino" of the opened file; undefined where the platform has no inode numbers. */
  readonly #identity: string | undefined;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();
  /** Streams not yet finished: a consumer that stopped pulling must still see the close. */
  readonly #streams = new Set<ReadableStreamDefaultController>();

  private constructor(path: string, file: Deno.FsFile, info: Deno.FileInfo) {
    this.path = path;
    this.#file = file;
    this.size = info.size;
    this.#absolutePath = resolve(path);
    this.#identity = fileIdentity(info);
  }

  static async open(path: string): Promise<ArchiveFile> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (err) {
      throw new Error(`Cannot open archive "${path}": ${message(err)}`, { cause: err });
    }
    try {
      const info = await file.stat();
      if (!info.isFile) throw new Error("not a regular file");
      return new ArchiveFile(path, file, info);
    } catch (err) {
      file.close();
      throw new Error(`Cannot open archive "${path}": ${message(err)}`, { cause: err });
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Reads `length` bytes at `offset`; fewer only when the file ends first
   * (callers that know the size treat that as truncation).
   */
  read(offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
    return this.#readInto(offset, new Uint8Array(length));
  }

  /** Reads exactly `length` bytes at `offset` or throws naming what was being read. */
  async readExact(
    offset: number,
    length: number,
    what: string,
  ): Promise<Uint8Array<ArrayBuffer>> {
    const bytes = await this.read(offset, length);
    if (bytes.length !== length) {
      throw new Error(
        `Archive "${this.path}" is truncated: ${what} needs ${length} bytes at offset ${offset}, found ${bytes.length}`,
      );
    }
    return bytes;
  }

  /**
   * Streams `length` bytes from `offset` in bounded chunks, reading only as
   * fast as the consumer pulls; `close()` errors it even while nobody pulls.
   */
  stream(offset: number, length: number, what: string): ReadableStream<Uint8Array<ArrayBuffer>> {
    let position = offset;
    const end = offset + length;
    let live: ReadableStreamDefaultController | undefined;
    return new ReadableStream<Uint8Array<ArrayBuffer>>({
      start: (controller) => {
        if (this.#closed) {
          controller.error(new Error(`Archive "${this.path}" is closed`));
          return;
        }
        live = controller;
        this.#streams.add(controller);
      },
      pull: async (controller) => {
        try {
          if (position < end) {
            const size = Math.min(CHUNK_BYTES, end - position);
            const chunk = await this.readExact(position, size, what);
            position += size;
            controller.enqueue(chunk);
          }
          if (position >= end) {
            this.#streams.delete(controller);
            controller.close();
          }
        } catch (err) {
          this.#streams.delete(controller);
          throw err;
        }
      },
      cancel: () => {
        if (live) this.#streams.delete(live);
      },
    }, { highWaterMark: 0 });
  }

  /**
   * The file from `offset` to its end, as a stream `Deno.serve` sends without
   * JS: a `Response` whose body is an untouched `FsFile.readable` is piped by
   * the runtime itself (native 64 KiB reads), which on loopback costs about
   * half the CPU of `stream()` and is about as fast as a zero-copy sendfile
   * server (bench/registry_bench.ts).
   * A range cannot be had that way (any JS transform drops back to the slow
   * path), so the stream runs past the caller's range to the end of the file:
   * only a consumer that stops at its own limit may read it, such as
   * `Deno.serve` over HTTP/1.x, which sends no more than the response's
   * Content-Length and then drops the body (over HTTP/2 it resets the stream
   * instead).
   *
   * It reads through a handle of its own (positions are per handle), opened
   * from the path and checked to be the same file (device and inode), so it
   * serves what `stream()` would. Undefined when that cannot be had: this
   * archive is closed, the path now names another file or nothing, the
   * platform has no inode numbers, or the file has fewer than `offset +
   * length` bytes (`stream()` then reports the truncation). Whoever consumes
   * the stream owns the handle and closes it: `Deno.serve` does when the body
   * ends, the client goes away or the server is aborted, so closing this
   * archive does not end a tail the server already sends.
   */
  async fileTail(
    offset: number,
    length: number,
  ): Promise<ReadableStream<Uint8Array<ArrayBuffer>> | undefined> {
    if (this.#closed || this.#identity === undefined) return undefined;
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.#absolutePath, { read: true });
    } catch {
      return undefined;
    }
    try {
      const info = await file.stat();
      if (
        this.#closed || fileIdentity(info) !== this.#identity || info.size < offset + length
      ) {
        file.close();
        return undefined;
      }
      await file.seek(offset, Deno.SeekMode.Start);
      return file.readable;
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /**
   * The `sha256:<hex>` digest of `length` bytes at `offset`, hashed as they
   * are read through one reused buffer (fresh buffers per chunk cost more than
   * the hash on a cold heap).
   */
  async sha256(offset: number, length: number, what: string): Promise<string> {
    const hash = createHash("sha256");
    const buf = new Uint8Array(Math.min(CHUNK_BYTES, length));
    for (let done = 0; done < length;) {
      const size = Math.min(buf.length, length - done);
      const chunk = await this.#readInto(offset + done, buf.subarray(0, size));
      if (chunk.length !== size) {
        throw new Error(
          `Archive "${this.path}" is truncated: ${what} needs ${length} bytes at offset ${offset}, found ${
            done + chunk.length
          }`,
        );
      }
      hash.update(chunk);
      done += size;
    }
    return `sha256:${hash.digest("hex")}`;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
    const error = new Error(`Archive "${this.path}" is closed`);
    for (const controller of this.#streams) {
      try {
        controller.error(error);
      } catch {
        // already errored or closed
      }
    }
    this.#streams.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Fills `buf` from `offset`; returns the filled part (shorter at end of file). */
  #readInto(offset: number, buf: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
    return this.#locked(async () => {
      if (this.#closed) throw new Error(`Archive "${this.path}" is closed`);
      await this.#file.seek(offset, Deno.SeekMode.Start);
      let filled = 0;
      while (filled < buf.length) {
        const n = await this.#file.read(buf.subarray(filled));
        if (n === null) break;
        filled += n;
      }
      return filled === buf.length ? buf : buf.subarray(0, filled);
    });
  }

  #locked<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(fn);
    this.#queue = result.catch(() => {});
    return result;
  }
}

function fileIdentity(info: Deno.FileInfo): string | undefined {
  return info.dev === null || info.ino === null ? undefined : `${info.dev}:${info.ino}`;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
