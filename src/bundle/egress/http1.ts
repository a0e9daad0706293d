/**
 * Just enough HTTP/1.1 for a proxy that must see every request on a
 * connection: parse heads, serialise them back, and move bodies by their
 * framing (Content-Length, chunked, until close) chunk by chunk, so SSE and
 * long downloads flow without being buffered. Ambiguous framing (both
 * Transfer-Encoding and Content-Length, or a Transfer-Encoding other than
 * chunked) is refused: it is the classic request-smuggling lever.
 */
import { type BufferedWire, TruncatedError } from "./buffered.ts";
import type { Wire } from "./wire.ts";

export type Headers1 = [name: string, value: string][];

export interface RequestHead {
  method: string;
  target: string;
  version: string;
  headers: Headers1;
}

export interface ResponseHead {
  version: string;
  status: number;
  reason: string;
  headers: Headers1;
}

/** A malformed message: `status` is what to answer the peer. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export const MAX_HEAD_BYTES = 64 * 1024;
const MAX_LINE_BYTES = 8 * 1024;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const VERSION = /^HTTP\/1\.[01]$/;

/** Bytes as a string of the same code units (latin1), so header bytes round-trip exactly. */
export function bytesToBinary(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return s;
}

export function binaryToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

function splitHead(bytes: Uint8Array): { start: string; headers: Headers1 } {
  const lines = bytesToBinary(bytes).split("\n").map((l) => l.endsWith("\r") ? l.slice(0, -1) : l);
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const start = lines.shift() ?? "";
  const headers: Headers1 = [];
  for (const line of lines) {
    if (line.startsWith(" ") || line.startsWith("\t")) {
      throw new HttpError(400, "Obsolete header line folding is not accepted");
    }
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name)) {
      throw new HttpError(400, `Malformed header line: "${line.slice(0, 40)}"`);
    }
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (/[\0\r]/.test(value)) throw new HttpError(400, `Invalid character in header "${name}"`);
    headers.push([name, value]);
  }
  return { start, headers };
}

export function parseRequestHead(bytes: Uint8Array): RequestHead {
  const { start, headers } = splitHead(bytes);
  const parts = start.split(" ");
  const [method = "", target = "", version = ""] = parts;
  if (parts.length !== 3 || !TOKEN.test(method) || target === "" || !VERSION.test(version)) {
    throw new HttpError(400, `Malformed request line: "${start.slice(0, 80)}"`);
  }
  if (hasSpaceOrControl(target)) {
    throw new HttpError(400, "Invalid character in request target");
  }
  return { method, target, version, headers };
}

export function parseResponseHead(bytes: Uint8Array): ResponseHead {
  const { start, headers } = splitHead(bytes);
  const m = /^(HTTP\/1\.[01]) (\d{3})(?: (.*))?$/.exec(start);
  if (!m) throw new HttpError(502, `Malformed status line: "${start.slice(0, 80)}"`);
  return { version: m[1] ?? "HTTP/1.1", status: Number(m[2]), reason: m[3] ?? "", headers };
}

export function serializeRequestHead(h: RequestHead): Uint8Array {
  return serialize(`${h.method} ${h.target} ${h.version}`, h.headers);
}

export function serializeResponseHead(h: ResponseHead): Uint8Array {
  return serialize(`${h.version} ${h.status} ${h.reason}`, h.headers);
}

function serialize(start: string, headers: Headers1): Uint8Array {
  let s = start + "\r\n";
  for (const [n, v] of headers) s += `${n}: ${v}\r\n`;
  return binaryToBytes(s + "\r\n");
}

/** The first value of header `name` (case-insensitive). */
export function getHeader(headers: Headers1, name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

/**
 * Strips optional whitespace (RFC 9110 §5.6.3: SP and HTAB) and nothing else:
 * `String.prototype.trim` also strips \v, \f and U+00A0, so egress would read
 * `Transfer-Encoding: \vchunked` as chunked and forward the value as it came,
 * to a server that may frame the body otherwise (request smuggling).
 */
function trimOws(s: string): string {
  return s.replace(/^[ \t]+|[ \t]+$/g, "");
}

/** Every comma-separated token of every `name` header, lower-cased. */
export function headerTokens(headers: Headers1, name: string): string[] {
  const lower = name.toLowerCase();
  return headers.filter(([n]) => n.toLowerCase() === lower)
    .flatMap(([, v]) => v.split(","))
    .map((t) => trimOws(t).toLowerCase())
    .filter((t) => t !== "");
}

export type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" };

function framingFromHeaders(headers: Headers1, status: number): Framing | undefined {
  const te = headerTokens(headers, "transfer-encoding");
  const cls = headers.filter(([n]) => n.toLowerCase() === "content-length").map(([, v]) => v);
  if (te.length > 0) {
    if (cls.length > 0) {
      throw new HttpError(status, "Both Transfer-Encoding and Content-Length are set");
    }
    if (te.length !== 1 || te[0] !== "chunked") {
      throw new HttpError(status === 400 ? 501 : status, `Unsupported Transfer-Encoding "${te}"`);
    }
    return { kind: "chunked" };
  }
  if (cls.length > 0) {
    const values = new Set(cls.flatMap((v) => v.split(",")).map(trimOws));
    const [only] = values;
    if (values.size !== 1 || only === undefined || !/^\d{1,15}$/.test(only)) {
      throw new HttpError(status, `Invalid Content-Length "${cls.join(", ")}"`);
    }
    return { kind: "length", length: Number(only) };
  }
  return undefined;
}

/** How the body of a request is delimited (RFC 9112 §6.3). */
export function requestFraming(h: RequestHead): Framing {
  // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty
  // framing; a server may read it otherwise than we do (request smuggling).
  if (
    h.version === "HTTP/1.0" && h.headers.some(([k]) => k.toLowerCase() === "transfer-encoding")
  ) {
    throw new HttpError(400, "Transfer-Encoding in an HTTP/1.0 request");
  }
  const f = framingFromHeaders(h.headers, 400);
  if (!f || (f.kind === "length" && f.length === 0)) return { kind: "none" };
  return f;
}

/** How the body of a response to `method` is delimited. */
export function responseFraming(h: ResponseHead, method: string): Framing {
  if (method === "HEAD" || h.status < 200 || h.status === 204 || h.status === 304) {
    return { kind: "none" };
  }
  const f = framingFromHeaders(h.headers, 502);
  if (!f) return { kind: "close" };
  if (f.kind === "length" && f.length === 0) return { kind: "none" };
  return f;
}

/** True when the connection may carry another message after this one. */
export function keepsAlive(version: string, headers: Headers1): boolean {
  const tokens = headerTokens(headers, "connection");
  if (tokens.includes("close")) return false;
  return version === "HTTP/1.1" || tokens.includes("keep-alive");
}

/**
 * Moves one message body from `from` to `to` as it arrives, keeping chunked
 * encoding as is (sizes, extensions, trailers) so nothing is re-framed.
 * With `crlfOnly` (request bodies, which go on to a server) every chunk line
 * must end in CRLF (RFC 9112 §7.1): the lines go on as they came, and a bare
 * LF that egress took for a line end the server may not (request smuggling).
 * Returns the bytes written.
 */
export async function copyBody(
  from: BufferedWire,
  to: Wire,
  framing: Framing,
  crlfOnly = false,
): Promise<number> {
  switch (framing.kind) {
    case "none":
      return 0;
    case "length":
      return await copyExact(from, to, framing.length);
    case "close":
      return await from.copyTo(to, Infinity);
    case "chunked":
      return await copyChunked(from, to, crlfOnly);
  }
}

const CHUNK_SIZE_LINE = /^([0-9a-fA-F]{1,15})[ \t]*(;[^\r\n]*)?\r?\n$/;
const CHUNK_SIZE_LINE_CRLF = /^([0-9a-fA-F]{1,15})[ \t]*(;[^\r\n]*)?\r\n$/;

async function copyExact(from: BufferedWire, to: Wire, length: number): Promise<number> {
  const n = await from.copyTo(to, length);
  if (n < length) {
    throw new TruncatedError(`Connection closed with ${length - n} body bytes missing`);
  }
  return length;
}

async function copyChunked(from: BufferedWire, to: Wire, crlfOnly: boolean): Promise<number> {
  const sizeLine = crlfOnly ? CHUNK_SIZE_LINE_CRLF : CHUNK_SIZE_LINE;
  let n = 0;
  for (;;) {
    const line = await from.readLine(MAX_LINE_BYTES);
    const m = sizeLine.exec(bytesToBinary(line));
    if (!m) throw new HttpError(400, "Malformed chunk size line");
    await to.write(line);
    n += line.length;
    const size = parseInt(m[1] ?? "", 16);
    if (size === 0) break;
    n += await copyExact(from, to, size);
    const crlf = await from.readLine(MAX_LINE_BYTES);
    if (crlf.length > 2 || crlf[crlf.length - 1] !== 0x0a || (crlfOnly && crlf[0] !== 0x0d)) {
      throw new HttpError(400, "Missing CRLF after chunk data");
    }
    await to.write(crlf);
    n += crlf.length;
  }
  // Trailer section: header lines up to a blank line.
  for (;;) {
    const line = await from.readLine(MAX_LINE_BYTES);
    if (crlfOnly && (line.length < 2 || line[line.length - 2] !== 0x0d)) {
      throw new HttpError(400, "Trailer line does not end in CRLF");
    }
    await to.write(line);
    n += line.length;
    if (line.length === 1 || (line.length === 2 && line[0] === 0x0d)) return n;
  }
}

function hasSpaceOrControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return true;
  }
  return false;
}
