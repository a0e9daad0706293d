/**
 * Tar archives in memory, the one format both engines take files in and out
 * by: `docker cp` streams them, and a guest's `tar -x` reads them. Writes
 * POSIX ustar entries (with a PAX `path` record for long names) carrying the
 * owner and mode each file must have; reads back regular files, which is all
 * bottle ever copies out (the audit log).
 */

export interface TarEntryInput {
  /** Relative path inside the archive ("a/b.txt"); directories may end in "/". */
  path: string;
  type: "file" | "directory";
  /** Octal mode, e.g. 0o644. */
  mode: number;
  uid?: number;
  gid?: number;
  data?: Uint8Array | string;
}

const BLOCK = 512;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function writeTar(entries: readonly TarEntryInput[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) parts.push(...entryBlocks(e));
  parts.push(new Uint8Array(BLOCK * 2));
  return concat(parts);
}

/** The contents of every regular file in a tar archive, by path. */
export function readTarFiles(tar: Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  let pos = 0;
  let paxPath: string | undefined;
  while (pos + BLOCK <= tar.length) {
    const h = tar.subarray(pos, pos + BLOCK);
    if (h.every((b) => b === 0)) break;
    const size = parseOctal(h.subarray(124, 136));
    const type = String.fromCharCode(h[156]!);
    const body = tar.subarray(pos + BLOCK, pos + BLOCK + size);
    pos += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x") {
      paxPath = paxRecords(body).get("path");
      continue;
    }
    const prefix = cString(h.subarray(345, 500));
    const name = paxPath ?? (prefix ? `${prefix}/${cString(h.subarray(0, 100))}` : cString(
      h.subarray(0, 100),
    ));
    paxPath = undefined;
    if (type === "0" || type === "\0") out.set(name.replace(/^\.\//, ""), body.slice());
  }
  return out;
}

function entryBlocks(e: TarEntryInput): Uint8Array[] {
  const data = typeof e.data === "string" ? encoder.encode(e.data) : e.data ?? new Uint8Array();
  if (e.type === "directory" && data.length > 0) throw new Error(`Directory "${e.path}" has data`);
  const path = e.type === "directory" && !e.path.endsWith("/") ? `${e.path}/` : e.path;
  if (path.startsWith("/") || path.split("/").includes("..")) {
    throw new Error(`Tar path "${e.path}" must be relative and stay inside the archive`);
  }
  const out: Uint8Array[] = [];
  let name = path;
  if (encoder.encode(path).length > 100) {
    const rec = paxRecord("path", path);
    out.push(header({ name: "././@PaxHeader", size: rec.length, type: "x", mode: 0o644 }));
    out.push(padded(rec));
    // Readers take the pax path; the ustar name is a stand-in, ASCII so it fits in bytes.
    name = path.replace(/[^\x20-\x7e]/g, "_").slice(0, 99);
  }
  out.push(header({
    name,
    size: data.length,
    type: e.type === "directory" ? "5" : "0",
    mode: e.mode,
    uid: e.uid ?? 0,
    gid: e.gid ?? 0,
  }));
  if (data.length > 0) out.push(padded(data));
  return out;
}

function header(
  h: { name: string; size: number; type: string; mode: number; uid?: number; gid?: number },
): Uint8Array {
  const b = new Uint8Array(BLOCK);
  const put = (offset: number, length: number, value: string) => {
    const bytes = encoder.encode(value);
    if (bytes.length > length) throw new Error(`Tar field too long: "${value}"`);
    b.set(bytes, offset);
  };
  const octal = (n: number, length: number) => n.toString(8).padStart(length - 1, "0");
  put(0, 100, h.name);
  put(100, 8, octal(h.mode, 8));
  put(108, 8, octal(h.uid ?? 0, 8));
  put(116, 8, octal(h.gid ?? 0, 8));
  put(124, 12, octal(h.size, 12));
  put(136, 12, octal(0, 12));
  put(148, 8, "        ");
  put(156, 1, h.type);
  put(257, 6, "ustar\0");
  put(263, 2, "00");
  const sum = b.reduce((s, x) => s + x, 0);
  put(148, 8, `${octal(sum, 7)}\0`);
  return b;
}

/** A PAX record: "<len> key=value\n", where len counts itself. */
function paxRecord(key: string, value: string): Uint8Array {
  const body = ` ${key}=${value}\n`;
  let len = encoder.encode(body).length;
  len += String(len + String(len).length).length;
  return encoder.encode(`${len}${body}`);
}

function paxRecords(body: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of decoder.decode(body).split("\n")) {
    const m = /^\d+ ([^=]+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

function padded(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.length / BLOCK) * BLOCK);
  out.set(data);
  return out;
}

function parseOctal(field: Uint8Array): number {
  const s = cString(field).trim();
  return s ? parseInt(s, 8) : 0;
}

function cString(field: Uint8Array): string {
  const end = field.indexOf(0);
  return decoder.decode(end < 0 ? field : field.subarray(0, end));
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}
