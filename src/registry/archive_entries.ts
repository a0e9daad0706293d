/**
 * Files of an indexed tar archive as registry content: small files read whole
 * (manifests, configs), big ones streamed as blobs, and digests computed by
 * streaming hash once per entry, so a layer that several images share (Docker
 * links the copies) is hashed once.
 */
import { createHash } from "node:crypto";
import type { ArchiveFile } from "./archive_file.ts";
import type { RegistryBlob } from "./image_content.ts";
import type { TarEntry, TarIndex } from "./tar_index.ts";

/** Manifests and configs are read into memory; registries cap manifests at 4 MiB, configs stay far below this. */
export const MAX_DOCUMENT_BYTES = 16 << 20;

export class ArchiveEntries {
  readonly file: ArchiveFile;
  readonly index: TarIndex;
  readonly #digests = new Map<number, Promise<string>>();

  constructor(file: ArchiveFile, index: TarIndex) {
    this.file = file;
    this.index = index;
  }

  get path(): string {
    return this.file.path;
  }

  /** The regular file at `name`, links followed. */
  entry(name: string): TarEntry | undefined {
    return this.index.file(name);
  }

  /** Reads a small file whole; `what` names it in errors. */
  async readAll(entry: TarEntry, what: string): Promise<Uint8Array<ArrayBuffer>> {
    if (entry.size > MAX_DOCUMENT_BYTES) {
      throw new Error(
        `Cannot read ${what} "${entry.name}" in "${this.path}": ${entry.size} bytes exceeds the ${MAX_DOCUMENT_BYTES}-byte limit`,
      );
    }
    return await this.file.readExact(entry.offset, entry.size, `${what} "${entry.name}"`);
  }

  /** Reads and parses a JSON file. */
  async readJson(entry: TarEntry, what: string): Promise<unknown> {
    const bytes = await this.readAll(entry, what);
    try {
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (err) {
      throw new Error(
        `Cannot parse ${what} "${entry.name}" in "${this.path}": ${
          err instanceof Error ? err.message : String(err)
        }`,
      );
    }
  }

  /** `sha256:<hex>` of the entry's bytes, streamed through the hash once and remembered. */
  digest(entry: TarEntry): Promise<string> {
    let digest = this.#digests.get(entry.offset);
    if (digest === undefined) {
      digest = this.file.sha256(entry.offset, entry.size, `"${entry.name}"`);
      this.#digests.set(entry.offset, digest);
      // A failed hash (file closed mid-way) is retried on the next request.
      digest.catch(() => this.#digests.delete(entry.offset));
    }
    return digest;
  }

  /** The entry as a blob known to have `digest`. */
  blob(entry: TarEntry, digest: string): RegistryBlob {
    const file = this.file;
    return {
      digest,
      size: entry.size,
      stream(start = 0, end = entry.size) {
        if (start < 0 || end > entry.size || start > end) {
          throw new RangeError(
            `Range ${start}-${end} is outside blob "${digest}" of ${entry.size} bytes`,
          );
        }
        return file.stream(entry.offset + start, end - start, `blob "${digest}"`);
      },
      fileTail(start) {
        if (start < 0 || start > entry.size) {
          throw new RangeError(
            `Offset ${start} is outside blob "${digest}" of ${entry.size} bytes`,
          );
        }
        return file.fileTail(entry.offset + start, entry.size - start);
      },
    };
  }
}

/** `sha256:<hex>` of bytes already in memory. */
export function sha256Bytes(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}
