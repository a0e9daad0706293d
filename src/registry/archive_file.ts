/**
 * Positioned reads from one open archive file. Deno has no pread, so every
 * read is a seek plus reads under a lock: one handle serves any number of
 * concurrent blob streams, it stays on the inode that was indexed even if the
 * path is replaced or removed, and closing it ends every stream it feeds.
 */
import { createHash } from "node:crypto";

/** Largest piece read at once: bounds memory per stream, large enough to keep syscalls rare. */
const CHUNK_BYTES = 1 << 20;

export class ArchiveFile implements Disposable {
  readonly path: string;
  /** Size in bytes when the file was opened. */
  readonly size: number;
  #file: Deno.FsFile;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();
  /** Streams not yet finished: a consumer that stopped pulling must still see the close. */
  readonly #streams = new Set<ReadableStreamDefaultController>();

  private constructor(path: string, file: Deno.FsFile, size: number) {
    this.path = path;
    this.#file = file;
    this.size = size;
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
      return new ArchiveFile(path, file, info.size);
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

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
