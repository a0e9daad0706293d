/**
 * The table of contents of a tar file, read from its headers alone so that a
 * multi-gigabyte `docker save` archive is indexed by seeking past each
 * entry's data instead of extracting it. Understands ustar (name prefix), GNU
 * long names and link names (`././@LongLink`), PAX extended headers (`path`,
 * `linkpath`, `size`) and base-256 sizes, which is what Docker, Go's
 * archive/tar, GNU tar and bsdtar write.
 */
import type { ArchiveFile } from "./archive_file.ts";

export type TarEntryType = "file" | "directory" | "symlink" | "hardlink" | "other";

export interface TarEntry {
  /** Normalized path: no leading "./" or "/", no trailing "/". */
  readonly name: string;
  readonly type: TarEntryType;
  /** Offset of the entry's data in the tar file. */
  readonly offset: number;
  readonly size: number;
  /** Target of a symlink (relative to the entry's directory) or hard link (archive path). */
  readonly linkName?: string;
}

const BLOCK = 512;
/** Extended headers hold names and a few numbers; anything bigger is not a tar we understand. */
const MAX_EXTENDED_HEADER_BYTES = 1 << 20;
const MAX_LINK_HOPS = 16;

export class TarIndex {
  readonly #entries: Map<string, TarEntry>;

  constructor(entries: Map<string, TarEntry>) {
    this.#entries = entries;
  }

  /** Every entry under its normalized name; a later entry replaces an earlier one, as on extraction. */
  get entries(): ReadonlyMap<string, TarEntry> {
    return this.#entries;
  }

  /**
   * The regular file at `name`, following symlinks and hard links (`docker
   * save` links a layer it already wrote); undefined when there is none.
   */
  file(name: string): TarEntry | undefined {
    let entry = this.#entries.get(normalizePath(name));
    for (let hops = 0; entry !== undefined && hops <= MAX_LINK_HOPS; hops++) {
      if (entry.type === "file") return entry;
      if (entry.linkName === undefined) return undefined;
      if (entry.type === "symlink") {
        const dir = entry.name.includes("/")
          ? entry.name.slice(0, entry.name.lastIndexOf("/"))
          : "";
        const target = entry.linkName.startsWith("/") ? entry.linkName : `${dir}/${entry.linkName}`;
        entry = this.#entries.get(normalizePath(target));
      } else if (entry.type === "hardlink") {
        entry = this.#entries.get(normalizePath(entry.linkName));
      } else {
        return undefined;
      }
    }
    return undefined;
  }
}

/** Reads every header of the tar in `file`. */
export async function indexTar(file: ArchiveFile): Promise<TarIndex> {
  const entries = new Map<string, TarEntry>();
  const fail = (offset: number, detail: string) =>
    new Error(`Cannot read tar "${file.path}" at offset ${offset}: ${detail}`);

  const compressed = async () => {
    const compression = compressionOf(await file.read(0, Math.min(BLOCK, file.size)));
    return compression &&
      fail(
        0,
        `it is ${compression}-compressed, and blobs are served by seeking: decompress it first`,
      );
  };
  if (file.size > 0 && file.size < BLOCK) {
    throw (await compressed()) ?? fail(0, `${file.size} bytes is too short for a tar header`);
  }

  let offset = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Map<string, string> | undefined;

  while (offset + BLOCK <= file.size) {
    const header = await file.readExact(offset, BLOCK, "a tar header");
    if (header.every((b) => b === 0)) break;
    if (!checksumMatches(header)) {
      throw (offset === 0 ? await compressed() : undefined) ??
        fail(offset, "header checksum mismatch (not a tar file, or corrupt)");
    }
    const typeflag = String.fromCharCode(header[156] ?? 0);
    const headerSize = parseNumber(header.subarray(124, 136));
    if (headerSize === undefined) throw fail(offset, "invalid size field");
    const size = pax?.has("size") ? Number(pax.get("size")) : headerSize;
    if (!Number.isSafeInteger(size) || size < 0) throw fail(offset, `invalid size "${size}"`);
    const dataOffset = offset + BLOCK;
    if (dataOffset + size > file.size) {
      throw fail(offset, `entry needs ${size} bytes but the file ends first (truncated)`);
    }
    const next = dataOffset + Math.ceil(size / BLOCK) * BLOCK;

    if (typeflag === "L" || typeflag === "K" || typeflag === "x") {
      if (size > MAX_EXTENDED_HEADER_BYTES) throw fail(offset, `extended header of ${size} bytes`);
      const data = await file.readExact(dataOffset, size, "a tar extended header");
      if (typeflag === "L") longName = cString(data);
      else if (typeflag === "K") longLink = cString(data);
      else pax = parsePax(data, (detail) => fail(offset, detail));
      offset = next;
      continue;
    }
    if (typeflag === "g") {
      // Global PAX headers carry archive-wide comments (git archive); nothing here needs them.
      offset = next;
      continue;
    }

    const magic = ascii(header.subarray(257, 263));
    const prefix = magic === "ustar\0" ? cString(header.subarray(345, 500)) : "";
    const headerName = cString(header.subarray(0, 100));
    const rawName = pax?.get("path") ?? longName ??
      (prefix ? `${prefix}/${headerName}` : headerName);
    const rawLink = pax?.get("linkpath") ?? longLink ?? cString(header.subarray(157, 257));
    const type = entryType(typeflag, rawName);
    const name = normalizePath(rawName);
    if (name !== "") {
      entries.set(name, {
        name,
        type,
        offset: dataOffset,
        size: type === "file" ? size : 0,
        ...(type === "symlink" || type === "hardlink" ? { linkName: rawLink } : {}),
      });
    }
    longName = undefined;
    longLink = undefined;
    pax = undefined;
    offset = next;
  }
  return new TarIndex(entries);
}

/** "./a//b/../c/" -> "a/c"; never climbs above the archive root. */
export function normalizePath(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return out.join("/");
}

function entryType(typeflag: string, name: string): TarEntryType {
  switch (typeflag) {
    case "0":
    case "\0":
    case "7":
      // Pre-POSIX tars mark directories only by a trailing slash.
      return name.endsWith("/") ? "directory" : "file";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "5":
      return "directory";
    default:
      return "other";
  }
}

function compressionOf(start: Uint8Array): string | undefined {
  const has = (...magic: number[]) => magic.every((b, i) => start[i] === b);
  if (has(0x1f, 0x8b)) return "gzip";
  if (has(0x28, 0xb5, 0x2f, 0xfd)) return "zstd";
  if (has(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return "xz";
  if (has(0x42, 0x5a, 0x68)) return "bzip2";
  return undefined;
}

function checksumMatches(header: Uint8Array): boolean {
  const stored = parseNumber(header.subarray(148, 156));
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : header[i] ?? 0;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

/** Octal (space/NUL padded) or GNU base-256 when the high bit of the first byte is set. */
function parseNumber(field: Uint8Array): number | undefined {
  const first = field[0] ?? 0;
  if (first & 0x80) {
    if (first & 0x40) return undefined; // negative
    let value = first & 0x3f;
    for (const b of field.subarray(1)) value = value * 256 + b;
    return Number.isSafeInteger(value) ? value : undefined;
  }
  const text = ascii(field).replace(/[\0 ]+$/, "").trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) return undefined;
  return parseInt(text, 8);
}

/** PAX records: "<len> <key>=<value>\n", where len counts the whole record in bytes. */
function parsePax(data: Uint8Array, fail: (detail: string) => Error): Map<string, string> {
  const records = new Map<string, string>();
  const decoder = new TextDecoder();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // padding some writers leave
    const space = data.indexOf(0x20, pos);
    if (space < 0) throw fail("malformed PAX record");
    const length = Number(ascii(data.subarray(pos, space)));
    if (!Number.isSafeInteger(length) || length <= space - pos || pos + length > data.length) {
      throw fail("malformed PAX record length");
    }
    const record = decoder.decode(data.subarray(space + 1, pos + length - 1));
    const eq = record.indexOf("=");
    if (eq < 0) throw fail("malformed PAX record");
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    // An empty value deletes the key, per POSIX.
    if (value === "") records.delete(key);
    else records.set(key, value);
    pos += length;
  }
  return records;
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}

function ascii(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}
