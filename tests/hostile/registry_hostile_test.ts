/**
 * The registry under hostile requests (traversal in names, tags and digests,
 * malformed digests, odd ranges, write methods, floods): only blobs and
 * manifests of the images a repository serves may ever come back. A real
 * server on loopback serves two fixture archives (legacy and OCI layout),
 * each also holding an image that is not served and canary files; more
 * canaries sit next to the archives and elsewhere in the temp dir. Requests
 * go out as raw bytes (fetch would normalize the very paths under test), and
 * every reply is judged: no 5xx, no canary, no byte past its framing, and a
 * 2xx body equal to real content of that repository (206: the exact slice).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type RunningRegistry, serveRegistry } from "../../src/registry/registry_server.ts";
import {
  fakeLayer,
  legacyArchive,
  noiseLayer,
  ociArchive,
  sha256,
} from "../testdata/registry/archive_fixtures.ts";
import { tarBytes, type TarInput } from "../testdata/registry/tar_writer.ts";
import { fdsOn, openFds } from "../helpers/open_fds.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Random, so no request can carry it and no fixture name can contain it. */
const CANARY = `canary-${crypto.randomUUID()}-must-never-be-served`;
const CANARY_BYTES = encoder.encode(CANARY);

/** Content a repository may serve, by digest. */
interface Known {
  bytes: Uint8Array;
  repos: Set<string>;
}

/** What the fixture holds, and what a reply may be compared with. */
interface World {
  reg: RunningRegistry;
  known: Map<string, Known>;
  /** Every regular file of both tars, by path, with the archive it is in. */
  tarFiles: { archive: string; name: string; bytes: Uint8Array }[];
  /** Exact bodies of the metadata endpoints. */
  meta: Map<string, string>;
  a: { repo: string; big: Uint8Array; mid: Uint8Array; empty: Uint8Array; manifest: string };
  b: { repo: string; layer: Uint8Array; manifest: string };
  d: { repo: string; big: Uint8Array; small: Uint8Array; index: string; manifest: string };
  /** Digests of images in the archives that no repository serves. */
  hidden: string[];
}

interface Tally {
  requests: number;
  refused: number;
  outside: number;
  fiveXX: number;
  problems: string[];
}

const tally: Tally = { requests: 0, refused: 0, outside: 0, fiveXX: 0, problems: [] };

function problem(label: string, what: string, outside = false): void {
  if (outside) tally.outside++;
  tally.problems.push(`${label}: ${what}`);
}

/** Fails the step with every problem it found, not only the first. */
function assertClean(step: string): void {
  const found = tally.problems.splice(0);
  assert.deepEqual(
    found.slice(0, 25),
    [],
    `${step}: ${found.length} problem(s), first ones listed`,
  );
}

// ---------------------------------------------------------------- fixtures

/** Drops the two zero blocks that end a tar, so more entries can follow. */
function withoutEnd(tar: Uint8Array): Uint8Array {
  return tar.subarray(0, tar.length - 1024);
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Canary entries appended after everything else, so a body that runs on past a blob reaches them. */
const CANARY_ENTRIES: TarInput[] = [
  { name: "canary.txt", data: CANARY_BYTES },
  { name: "secret/", type: "directory" },
  { name: "secret/canary.txt", data: CANARY_BYTES },
];

/** Regular files of a tar as the fixture writer lays them out (short names, octal sizes). */
function listTar(bytes: Uint8Array): { name: string; bytes: Uint8Array }[] {
  const out: { name: string; bytes: Uint8Array }[] = [];
  const cString = (b: Uint8Array) => {
    const end = b.indexOf(0);
    return decoder.decode(end < 0 ? b : b.subarray(0, end));
  };
  for (let at = 0; at + 512 <= bytes.length;) {
    const header = bytes.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const size = parseInt(cString(header.subarray(124, 136)).trim() || "0", 8);
    const type = String.fromCharCode(header[156] ?? 0);
    if (type === "0" || type === "\0") {
      out.push({
        name: cString(header.subarray(0, 100)),
        bytes: bytes.subarray(at + 512, at + 512 + size),
      });
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

async function buildWorld(dir: string): Promise<World> {
  const a = {
    big: noiseLayer((2 << 20) + 3, 0x1234567),
    mid: noiseLayer(70_001, 0x7654321),
    empty: new Uint8Array(0),
  };
  const bLayer = fakeLayer("other-image", 5000);
  const hiddenLayer = encoder.encode(CANARY.repeat(40));
  const legacy = legacyArchive([
    { repoTags: ["app:1"], layers: [a.big, a.mid, a.empty] },
    { repoTags: ["other:1"], layers: [bLayer] },
    { repoTags: ["hidden:1"], layers: [hiddenLayer] },
  ]);
  const d = { big: noiseLayer((3 << 19) + 11, 0x2468ace), small: fakeLayer("oci-small", 3000) };
  const oci = ociArchive([
    { names: ["docker.io/library/app:1"], layers: [d.big, d.small] },
    { names: ["docker.io/library/hidden:1"], layers: [encoder.encode(CANARY.repeat(41))] },
  ], { wrapInIndex: true });

  const legacyBytes = concat(withoutEnd(legacy.bytes), tarBytes(CANARY_ENTRIES));
  const ociBytes = concat(withoutEnd(oci.bytes), tarBytes(CANARY_ENTRIES));
  const legacyPath = join(dir, "legacy.tar");
  const ociPath = join(dir, "oci.tar");
  await Deno.writeFile(legacyPath, legacyBytes);
  await Deno.writeFile(ociPath, ociBytes);
  // Canaries outside the archives: next to them, deeper down, and a decoy layer.
  await Deno.writeFile(join(dir, "canary.txt"), CANARY_BYTES);
  await Deno.mkdir(join(dir, "nested", "deeper"), { recursive: true });
  await Deno.writeFile(join(dir, "nested", "deeper", "canary.txt"), CANARY_BYTES);
  await Deno.writeFile(join(dir, "nested", "layer.tar"), CANARY_BYTES);

  const reg = await serveRegistry({
    archives: [
      { path: legacyPath, refs: { "legacy/app:1": "app:1", "legacy/other:1": "other:1" } },
      { path: ociPath, refs: { "oci/app:1": "app:1" } },
    ],
  });
  try {
    return await describe(reg, { a, d, bLayer, legacy, oci, legacyBytes, ociBytes });
  } catch (err) {
    await reg.close();
    throw err;
  }
}

interface Fixture {
  a: { big: Uint8Array; mid: Uint8Array; empty: Uint8Array };
  d: { big: Uint8Array; small: Uint8Array };
  bLayer: Uint8Array;
  legacy: ReturnType<typeof legacyArchive>;
  oci: ReturnType<typeof ociArchive>;
  legacyBytes: Uint8Array;
  ociBytes: Uint8Array;
}

/** What the running registry must serve, checked against the fixture. */
async function describe(reg: RunningRegistry, f: Fixture): Promise<World> {
  const { a, d, bLayer, legacy, oci, legacyBytes, ociBytes } = f;
  const [legacyArchiveOpen, ociArchiveOpen] = reg.archives;
  const known = new Map<string, Known>();
  const add = (bytes: Uint8Array, repo: string) => {
    const digest = sha256(bytes);
    const entry = known.get(digest) ?? { bytes, repos: new Set<string>() };
    entry.repos.add(repo);
    known.set(digest, entry);
    return digest;
  };
  const [builtA, builtB, builtHidden] = legacy.images;
  const [builtD, builtHiddenOci] = oci.images;
  assert.ok(builtA && builtB && builtHidden && builtD && builtHiddenOci);
  for (const l of [a.big, a.mid, a.empty, builtA.config]) add(l, "legacy/app");
  for (const l of [bLayer, builtB.config]) add(l, "legacy/other");
  for (const l of [d.big, d.small, builtD.config]) add(l, "oci/app");
  // Manifests: legacy ones are synthesized, so they are taken from the server
  // and checked against the fixture before they count as real.
  const manifestOf = (repo: string, bytes: Uint8Array, layers: string[], config: string) => {
    const json = JSON.parse(decoder.decode(bytes));
    assert.deepEqual(json.layers.map((l: { digest: string }) => l.digest), layers);
    assert.equal(json.config.digest, config);
    return add(bytes, repo);
  };
  const aManifest = await legacyArchiveOpen!.image("app:1").rootManifest();
  const bManifest = await legacyArchiveOpen!.image("other:1").rootManifest();
  const dImage = ociArchiveOpen!.image("app:1");
  const dChild = await dImage.manifest(builtD.manifestDigest!);
  const dIndex = await dImage.rootManifest();
  assert.ok(dChild);
  assert.equal(dIndex.digest, builtD.indexDigest);
  const world: World = {
    reg,
    known,
    tarFiles: [
      ...listTar(legacyBytes).map((f) => ({ archive: "legacy", ...f })),
      ...listTar(ociBytes).map((f) => ({ archive: "oci", ...f })),
    ],
    meta: new Map([
      ["/v2/", "{}"],
      ["/v2", "{}"],
      ["/v2/_catalog", JSON.stringify({ repositories: ["legacy/app", "legacy/other", "oci/app"] })],
      ["/v2/legacy/app/tags/list", JSON.stringify({ name: "legacy/app", tags: ["1"] })],
      ["/v2/legacy/other/tags/list", JSON.stringify({ name: "legacy/other", tags: ["1"] })],
      ["/v2/oci/app/tags/list", JSON.stringify({ name: "oci/app", tags: ["1"] })],
    ]),
    a: {
      repo: "legacy/app",
      ...a,
      manifest: manifestOf(
        "legacy/app",
        aManifest.bytes,
        builtA.layerDigests,
        builtA.configDigest,
      ),
    },
    b: {
      repo: "legacy/other",
      layer: bLayer,
      manifest: manifestOf(
        "legacy/other",
        bManifest.bytes,
        builtB.layerDigests,
        builtB.configDigest,
      ),
    },
    d: {
      repo: "oci/app",
      ...d,
      index: add(dIndex.bytes, "oci/app"),
      manifest: manifestOf("oci/app", dChild.bytes, builtD.layerDigests, builtD.configDigest),
    },
    hidden: [
      ...builtHidden.layerDigests,
      builtHidden.configDigest,
      ...builtHiddenOci.layerDigests,
      builtHiddenOci.configDigest,
      builtHiddenOci.manifestDigest!,
      builtHiddenOci.indexDigest!,
    ],
  };
  assert.equal(world.tarFiles.filter((f) => f.name.endsWith("canary.txt")).length, 4);
  return world;
}

// ---------------------------------------------------------------- raw HTTP/1

interface Request1 {
  method: string;
  /** The request-target exactly as sent. */
  target: string;
  /** Header lines as sent; a Host line is added unless `noHost`. */
  headers?: string[];
  body?: Uint8Array;
  noHost?: boolean;
  version?: "1.0" | "1.1";
}

interface Reply {
  status: number;
  headers: Headers;
  body: Uint8Array;
  /** Bytes after the response's framing: must be none. */
  extra: Uint8Array;
}

type Result = Reply | { refused: string };

function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  const first = needle[0];
  if (first === undefined) return -1;
  for (let i = hay.indexOf(first, from); i >= 0 && i + needle.length <= hay.length;) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
    i = hay.indexOf(first, i + 1);
  }
  return -1;
}

function parseHead(text: string): { status: number; headers: Headers } {
  const [statusLine = "", ...lines] = text.split("\r\n");
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return { status: Number(statusLine.split(" ")[1]), headers };
}

/**
 * Splits what the server sent into replies framed as HTTP/1.1 frames them:
 * Content-Length, no body for HEAD, 1xx, 204 and 304.
 */
function splitReplies(bytes: Uint8Array, methods: string[]): Reply[] {
  const replies: Reply[] = [];
  let at = 0;
  for (const method of methods) {
    const end = indexOfBytes(bytes, encoder.encode("\r\n\r\n"), at);
    if (end < 0) break;
    const { status, headers } = parseHead(decoder.decode(bytes.subarray(at, end)));
    const start = end + 4;
    const bodyless = method === "HEAD" || status < 200 || status === 204 || status === 304;
    const length = bodyless ? 0 : Number(headers.get("Content-Length") ?? bytes.length - start);
    replies.push({
      status,
      headers,
      body: bytes.subarray(start, start + length),
      extra: new Uint8Array(),
    });
    at = start + length;
  }
  const last = replies.at(-1);
  if (last) last.extra = bytes.subarray(at);
  return replies;
}

function requestBytes(reg: RunningRegistry, r: Request1, close: boolean): Uint8Array {
  const lines = [
    `${r.method} ${r.target} HTTP/${r.version ?? "1.1"}`,
    ...(r.noHost ? [] : [`Host: ${reg.address}`]),
    ...(r.headers ?? []),
    ...(close ? ["Connection: close"] : []),
  ];
  return concat(encoder.encode(`${lines.join("\r\n")}\r\n\r\n`), r.body ?? new Uint8Array());
}

/** Writes `bytes` on a fresh connection and reads until the server closes it (10 s at most). */
async function roundTrip(reg: RunningRegistry, bytes: Uint8Array): Promise<Uint8Array | string> {
  const conn = await Deno.connect({ hostname: reg.hostname, port: reg.port });
  const timer = setTimeout(() => closeQuietly(conn), 10_000);
  const chunks: Uint8Array[] = [];
  let failure: string | undefined;
  try {
    try {
      for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
    } catch (err) {
      failure = `write: ${err instanceof Error ? err.name : String(err)}`; // refused before the body was read
    }
    const buf = new Uint8Array(64 << 10);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (err) {
        failure ??= `read: ${err instanceof Error ? err.name : String(err)}`;
        break;
      }
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
  const all = concat(...chunks);
  return all.length === 0 ? failure ?? "closed without a reply" : all;
}

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

async function send(reg: RunningRegistry, r: Request1): Promise<Result> {
  const got = await roundTrip(reg, requestBytes(reg, r, true));
  if (typeof got === "string") return { refused: got };
  const [reply] = splitReplies(got, [r.method]);
  return reply ?? { refused: `no reply head in ${got.length} bytes` };
}

// ---------------------------------------------------------------- judging

type Outcome = string;

/** What a request may get: predicates over outcomes ("200", "206 a-b", "416", "404", "refused"). */
type Expect = (outcome: Outcome) => boolean;

const refuse: Expect = (o) => o === "refused" || /^4\d\d$/.test(o);
const exactly = (...allowed: Outcome[]): Expect => (o) => allowed.includes(o);

interface Case {
  label: string;
  request: Request1;
  expect: Expect;
  /** The repository whose content a 2xx may carry; undefined: none may. */
  repo?: string;
  /** The digest a 2xx must carry (Docker-Content-Digest). */
  digest?: string;
}

const ERROR_CODES = new Set([
  "BLOB_UNKNOWN",
  "BLOB_UPLOAD_INVALID",
  "BLOB_UPLOAD_UNKNOWN",
  "DIGEST_INVALID",
  "MANIFEST_BLOB_UNKNOWN",
  "MANIFEST_INVALID",
  "MANIFEST_UNKNOWN",
  "NAME_INVALID",
  "NAME_UNKNOWN",
  "SIZE_INVALID",
  "UNAUTHORIZED",
  "DENIED",
  "UNSUPPORTED",
  "TOOMANYREQUESTS",
]);

function decodedPath(target: string): string | undefined {
  try {
    return decodeURIComponent(new URL(target, "http://registry.test").pathname);
  } catch {
    return undefined;
  }
}

/** Judges one reply; returns its outcome. Problems go to the tally. */
function judge(world: World, c: Case, result: Result): Outcome {
  tally.requests++;
  const label = `${c.label} [${c.request.method} ${c.request.target.slice(0, 120)}]`;
  if ("refused" in result) {
    tally.refused++;
    if (!c.expect("refused")) problem(label, `connection refused (${result.refused})`);
    return "refused";
  }
  const { status, headers, body, extra } = result;
  if (headers.has("X-Injected")) problem(label, "a header was injected through the request target");
  if (indexOfBytes(body, CANARY_BYTES) >= 0 || indexOfBytes(extra, CANARY_BYTES) >= 0) {
    problem(label, `status ${status}: the canary was served`, true);
  }
  if (extra.length > 0) problem(label, `${extra.length} bytes after the reply's framing`, true);
  if (c.request.method === "HEAD" && body.length > 0) problem(label, "HEAD reply has a body", true);
  if (status >= 500) {
    tally.fiveXX++;
    problem(label, `status ${status}: ${decoder.decode(body.subarray(0, 300))}`);
    return String(status);
  }
  let outcome: Outcome = String(status);
  if (status >= 400) {
    tally.refused++;
    if (status === 416) judgeUnsatisfied(world, c, label, result);
    else judgeError(label, result);
  } else if (status >= 200 && status < 300 && c.request.method === "OPTIONS") {
    // Answering OPTIONS is allowed, as long as it offers no writes and sends nothing.
    const allow = headers.get("Allow") ?? "";
    if (/PUT|POST|DELETE|PATCH/.test(allow)) problem(label, `OPTIONS offers "${allow}"`);
    if (body.length > 0) problem(label, "OPTIONS with a body", true);
  } else if (status >= 200 && status < 300) {
    outcome = judgeContent(world, c, label, result);
  } else {
    problem(label, `unexpected status ${status}`);
  }
  if (!c.expect(outcome)) problem(label, `got ${outcome}`);
  return outcome;
}

function judgeError(label: string, { status, headers, body }: Reply): void {
  if (status === 405) {
    const allow = headers.get("Allow") ?? "";
    if (!/\bGET\b/.test(allow) || !/\bHEAD\b/.test(allow)) {
      problem(label, `405 with Allow "${allow}"`);
    }
  }
  if (body.length === 0) return; // HEAD, or refused by the HTTP layer before the handler
  try {
    const json = JSON.parse(decoder.decode(body));
    const codes = (json.errors as { code: string }[]).map((e) => e.code);
    if (codes.length === 0 || !codes.every((code) => ERROR_CODES.has(code))) {
      problem(label, `error codes ${JSON.stringify(codes)}`);
    }
  } catch {
    problem(label, `status ${status} with a body that is no error document`, true);
  }
}

function judgeUnsatisfied(world: World, c: Case, label: string, reply: Reply): void {
  const known = world.known.get(reply.headers.get("Docker-Content-Digest") ?? "");
  const range = reply.headers.get("Content-Range");
  if (!known || range !== `bytes */${known.bytes.length}`) {
    problem(label, `416 with Content-Range "${range}" for ${c.digest}`);
  }
  if (reply.body.length > 0) problem(label, "416 with a body", true);
}

/** A 2xx body must be real content of the repository asked (or a metadata document). */
function judgeContent(world: World, c: Case, label: string, reply: Reply): Outcome {
  const { status, headers, body } = reply;
  const head = c.request.method === "HEAD";
  const length = Number(headers.get("Content-Length"));
  const path = decodedPath(c.request.target);
  const meta = path === undefined ? undefined : world.meta.get(path);
  if (meta !== undefined) {
    if (status !== 200 || length !== meta.length || (!head && decoder.decode(body) !== meta)) {
      problem(label, `metadata reply ${status} of ${length} bytes is not ${meta}`, true);
    }
    return String(status);
  }
  const digest = headers.get("Docker-Content-Digest") ?? "";
  const known = world.known.get(digest);
  if (!known || c.repo === undefined || !known.repos.has(c.repo)) {
    problem(
      label,
      `status ${status} served "${digest}" (${body.length} bytes), not content of ${c.repo}`,
      true,
    );
    return String(status);
  }
  if (c.digest !== undefined && digest !== c.digest) {
    problem(label, `served ${digest}, asked ${c.digest}`, true);
  }
  const size = known.bytes.length;
  let slice = known.bytes;
  let outcome: Outcome = "200";
  if (status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(headers.get("Content-Range") ?? "");
    const [first, last, total] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [];
    if (
      first === undefined || last === undefined || total !== size || first > last || last >= size
    ) {
      problem(
        label,
        `206 with Content-Range "${headers.get("Content-Range")}" for ${size} bytes`,
        true,
      );
      return "206 invalid";
    }
    slice = known.bytes.subarray(first, last + 1);
    outcome = `206 ${first}-${last}`;
  } else if (status !== 200) {
    problem(label, `status ${status} for content`);
  }
  if (length !== slice.length) {
    problem(label, `Content-Length ${length}, content is ${slice.length}`, true);
  }
  if (!head && (body.length !== slice.length || sha256(body) !== sha256(slice))) {
    problem(label, `body of ${body.length} bytes is not the content (${slice.length} bytes)`, true);
  }
  return outcome;
}

async function run(world: World, cases: Case[], concurrency = 16): Promise<Outcome[]> {
  const outcomes: Outcome[] = new Array(cases.length);
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      const c = cases[i]!;
      outcomes[i] = judge(world, c, await send(world.reg, c.request));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return outcomes;
}

const get = (target: string, extra: Partial<Request1> = {}): Request1 => ({
  method: "GET",
  target,
  ...extra,
});

/** The same request as GET and as HEAD, both hostile. */
function both(label: string, target: string, extra: Partial<Request1> = {}): Case[] {
  return ["GET", "HEAD"].map((method) => ({
    label,
    request: { ...get(target, extra), method },
    expect: refuse,
  }));
}

const hexOf = (digest: string) => digest.slice("sha256:".length);

// ---------------------------------------------------------------- raw HTTP/2

/** HPACK literal without indexing, no Huffman: enough to send any header. */
function hpack(headers: [string, string][]): Uint8Array {
  const out: number[] = [];
  const int = (value: number, prefixBits: number, first: number) => {
    const max = (1 << prefixBits) - 1;
    if (value < max) return out.push(first | value);
    out.push(first | max);
    for (value -= max; value >= 128; value >>= 7) out.push((value & 127) | 128);
    out.push(value);
  };
  const str = (s: string) => {
    const b = encoder.encode(s);
    int(b.length, 7, 0);
    out.push(...b);
  };
  for (const [name, value] of headers) {
    out.push(0);
    str(name);
    str(value);
  }
  return new Uint8Array(out);
}

function frame(type: number, flags: number, stream: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length << 8);
  out[3] = type;
  out[4] = flags;
  view.setUint32(5, stream);
  out.set(payload, 9);
  return out;
}

/**
 * One GET over cleartext HTTP/2 (prior knowledge), the way any h2c client
 * may send it: the DATA bytes of stream 1 and how the stream ended.
 */
async function h2Get(
  reg: RunningRegistry,
  path: string,
  extra: [string, string][],
): Promise<{ data: Uint8Array; end: string }> {
  const conn = await Deno.connect({ hostname: reg.hostname, port: reg.port });
  const timer = setTimeout(() => closeQuietly(conn), 10_000);
  try {
    const big = new Uint8Array(6);
    new DataView(big.buffer).setUint16(0, 4); // SETTINGS_INITIAL_WINDOW_SIZE
    new DataView(big.buffer).setUint32(2, 0x7fffffff);
    const windowUpdate = new Uint8Array(4);
    new DataView(windowUpdate.buffer).setUint32(0, 0x7fffffff - 65535);
    const headers = hpack([
      [":method", "GET"],
      [":scheme", "http"],
      [":path", path],
      [":authority", reg.address],
      ...extra,
    ]);
    await conn.write(concat(
      encoder.encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
      frame(4, 0, 0, big),
      frame(8, 0, 0, windowUpdate),
      frame(1, 0x5, 1, headers), // END_STREAM | END_HEADERS
    ));
    let buf: Uint8Array = new Uint8Array();
    const data: Uint8Array[] = [];
    const read = new Uint8Array(64 << 10);
    for (;;) {
      while (buf.length >= 9) {
        const length = (buf[0]! << 16) | (buf[1]! << 8) | buf[2]!;
        if (buf.length < 9 + length) break;
        const [type, flags] = [buf[3]!, buf[4]!];
        const stream = new DataView(buf.buffer, buf.byteOffset).getUint32(5) & 0x7fffffff;
        const payload = buf.slice(9, 9 + length);
        buf = buf.subarray(9 + length);
        if (type === 4 && !(flags & 1)) await conn.write(frame(4, 1, 0, new Uint8Array()));
        if (type === 0 && stream === 1) {
          const pad = flags & 0x8 ? payload[0]! + 1 : 0;
          data.push(payload.subarray(flags & 0x8 ? 1 : 0, payload.length - (pad ? pad - 1 : 0)));
          if (flags & 1) return { data: concat(...data), end: "END_STREAM" };
        }
        if (type === 1 && stream === 1 && flags & 1) {
          return { data: concat(...data), end: "END_STREAM" };
        }
        if (type === 3 && stream === 1) return { data: concat(...data), end: "RST_STREAM" };
        if (type === 7) return { data: concat(...data), end: "GOAWAY" };
      }
      const n = await conn.read(read);
      if (n === null) return { data: concat(...data), end: "EOF" };
      buf = concat(buf, read.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
}

// ---------------------------------------------------------------- process figures

async function pollUntil(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

const MiB = 1 << 20;

// ---------------------------------------------------------------- the harness

Deno.test("registry hostile: only blobs and manifests of the repository asked are ever served", async (t) => {
  const started = performance.now();
  Object.assign(tally, { requests: 0, refused: 0, outside: 0, fiveXX: 0, problems: [] });
  const dir = await Deno.makeTempDir({ prefix: "bottle-registry-hostile-" });
  await using _dir = { [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
  const world = await buildWorld(dir);
  await using _reg = world.reg;
  // From inside the temp dir, a name resolved as a relative path reaches the canaries.
  const cwd = Deno.cwd();
  Deno.chdir(dir);
  using _cwd = { [Symbol.dispose]: () => Deno.chdir(cwd) };
  const { reg, a, b, d } = world;
  let figures = { rssBefore: 0, rssBetween: 0, rssAfter: 0, fdsBefore: 0, fdsAfter: 0 };

  await t.step("positive control before: manifests and blobs pull whole", async () => {
    const cases: Case[] = [];
    for (
      const [repo, manifest] of [[a.repo, a.manifest], [b.repo, b.manifest], [d.repo, d.index], [
        d.repo,
        d.manifest,
      ]]
    ) {
      cases.push({
        label: "manifest by digest",
        request: get(`/v2/${repo}/manifests/${manifest}`),
        expect: exactly("200"),
        repo: repo!,
        digest: manifest!,
      });
    }
    cases.push({
      label: "manifest by tag",
      request: get(`/v2/${a.repo}/manifests/1`),
      expect: exactly("200"),
      repo: a.repo,
      digest: a.manifest,
    });
    for (const [digest, k] of world.known) {
      for (const repo of k.repos) {
        cases.push({
          label: "blob",
          request: get(`/v2/${repo}/blobs/${digest}`),
          expect: exactly("200"),
          repo,
          digest,
        });
      }
    }
    for (const path of world.meta.keys()) {
      cases.push({ label: "metadata", request: get(path), expect: exactly("200") });
    }
    await run(world, cases);
    assertClean("positive control");
  });

  await t.step(
    "traversal, encodings and odd names in repository names and tags are refused",
    async () => {
      const abs = encodeURIComponent(join(dir, "canary.txt"));
      const names = [
        "../../../../etc/passwd",
        "legacy/../../../etc/passwd",
        "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "..%2f..%2f..%2fetc%2fpasswd",
        "..%252f..%252fetc%252fpasswd",
        "%252e%252e%252fcanary.txt",
        "..\\..\\..\\etc\\passwd",
        "%5c..%5c..%5ccanary.txt",
        "legacy%5capp",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        abs,
        join(dir, "canary.txt"),
        join(dir, "nested/deeper/canary.txt"),
        encodeURIComponent(join(dir, "legacy.tar")),
        "..%2fcanary.txt",
        "..%2f..%2fnested%2flayer.tar",
        "legacy.tar",
        "canary.txt",
        "secret",
        "legacy/app%00",
        "legacy/app%00.tar",
        "%00",
        "legacy%2fapp%2f..%2f..%2fcanary.txt",
        "LEGACY/APP",
        "legacy/App",
        "legacy//app",
        "legacy/app/",
        "-legacy/app",
        "legacy/app.",
        "%C3%A4pp",
        "legacy/app%E2%80%AE",
        "%EF%BC%8E%EF%BC%8E%EF%BC%8Fcanary.txt", // fullwidth "../"
        "%c0%ae%c0%ae%c0%afcanary.txt", // overlong UTF-8 "../"
        "%ff%fe",
        "legacy%",
        "legacy%zzapp",
        "\u00e4pp",
        "a".repeat(8000),
        `${"a/".repeat(3000)}a`,
        `${"a-".repeat(4000)}!`,
      ];
      const cases: Case[] = [];
      for (const name of names) {
        cases.push(...both("repo name", `/v2/${name}/manifests/1`));
        cases.push(...both("repo name", `/v2/${name}/blobs/${a.manifest}`));
        cases.push(...both("repo name", `/v2/${name}/tags/list`));
      }
      cases.push(...both("very long repo name", `/v2/${"a".repeat(100_000)}/manifests/1`));
      const tags = [
        "..",
        "%2e%2e",
        "..%2f..%2f..%2fetc%2fpasswd",
        "..%2f..%2flegacy.tar",
        "%2e%2e%2f%2e%2e%2fcanary.txt",
        "..%252f..%252fcanary.txt",
        "..\\..\\canary.txt",
        "%5c..%5ccanary.txt",
        abs,
        "1%00",
        "1%2500",
        "%00",
        "1%0d%0aX-Injected:%201",
        "t".repeat(129),
        "-bad",
        ".hidden",
        "1%20",
        "%C3%A4",
        "manifest.json",
        "index.json",
        "oci-layout",
        "repositories",
        "canary.txt",
        "hidden",
        "latest", // no such tag: only "1" is served
        "2",
        "t".repeat(9000),
      ];
      for (const tag of tags) {
        for (const repo of [a.repo, d.repo]) {
          cases.push(
            ...both("tag", `/v2/${repo}/manifests/${tag}`),
          );
        }
      }
      // A tag of an image the archive holds but no repository serves.
      cases.push(...both("tag of a hidden image", `/v2/legacy/hidden/manifests/1`));
      cases.push(...both("tag of a hidden image", `/v2/oci/hidden/manifests/1`));
      cases.push(...both("raw NUL in the request line", `/v2/${a.repo}/manifests/1\0`));
      cases.push(...both("CR in the request line", `/v2/${a.repo}/manifests/1\rX`));
      await run(world, cases);
      assertClean("names and tags");
    },
  );

  await t.step("malformed, foreign and non-blob digests are refused", async () => {
    const layer = sha256(a.mid);
    const digests = [
      "sha256:../../etc/passwd",
      "sha256:..%2f..%2f..%2fetc%2fpasswd",
      "sha256%3a..%2f..%2fcanary.txt",
      "sha256:%2e%2e%2f%2e%2e%2fcanary.txt",
      `sha256:${hexOf(layer)}%2f..%2f..%2fcanary.txt`,
      `sha256:${encodeURIComponent(join(dir, "canary.txt"))}`,
      "sha256:..\\..\\canary.txt",
      "sha256:",
      "sha256",
      ":",
      `:${hexOf(layer)}`,
      "sha256::",
      `sha256::${hexOf(layer)}`,
      `sha256:${hexOf(layer).toUpperCase()}`,
      `SHA256:${hexOf(layer)}`,
      `sha256:${hexOf(layer).slice(1)}`,
      `sha256:${hexOf(layer)}0`,
      `sha256:${hexOf(layer)}${hexOf(layer)}`,
      `sha256:${hexOf(layer)}.tar`,
      `sha256:${hexOf(layer)}%00`,
      `sha256:${hexOf(layer)}%20`,
      `%20sha256:${hexOf(layer)}`,
      `sha256:${hexOf(layer)}:${hexOf(layer)}`,
      `sha512:${"ab".repeat(64)}`,
      `sha512:${hexOf(layer)}${hexOf(layer)}`,
      `md5:${"0".repeat(32)}`,
      `sha256+b64u:${btoa("x".repeat(32)).replaceAll("=", "")}`,
      `blake3:${hexOf(layer)}`,
      hexOf(layer),
      `blobs%2fsha256%2f${hexOf(layer)}`,
      `sha256%2f${hexOf(layer)}`,
      `sha256:${"g".repeat(64)}`,
      `sha256:${"0".repeat(64)}`,
      `sha256:${"z".repeat(9000)}`,
      // Names of what sits next to the archives (the working directory here).
      "canary.txt",
      "legacy.tar",
      "oci.tar",
      "nested",
      ".",
      "..",
      "%2e",
    ];
    const cases: Case[] = [];
    for (const digest of digests) {
      for (const repo of [a.repo, d.repo]) {
        cases.push(...both("digest", `/v2/${repo}/blobs/${digest}`));
        cases.push(...both("digest", `/v2/${repo}/manifests/${digest}`));
      }
    }
    // Every file of both tars, by path and by the digest of its bytes, in
    // every repository that does not serve exactly those bytes.
    for (const file of world.tarFiles) {
      const digest = sha256(file.bytes);
      for (const repo of [a.repo, b.repo, d.repo]) {
        for (const target of [file.name, encodeURIComponent(file.name), `sha256:${file.name}`]) {
          cases.push(...both("tar path as a blob", `/v2/${repo}/blobs/${target}`));
        }
        if (world.known.get(digest)?.repos.has(repo)) continue;
        cases.push(
          ...both(`digest of "${file.archive}:${file.name}"`, `/v2/${repo}/blobs/${digest}`),
        );
        cases.push(
          ...both(`digest of "${file.archive}:${file.name}"`, `/v2/${repo}/manifests/${digest}`),
        );
      }
    }
    // Real content, asked for through a repository that does not serve it.
    for (const [digest, k] of world.known) {
      for (const repo of [a.repo, b.repo, d.repo]) {
        if (k.repos.has(repo)) continue;
        cases.push(...both("another repository's content", `/v2/${repo}/blobs/${digest}`));
        cases.push(...both("another repository's content", `/v2/${repo}/manifests/${digest}`));
      }
    }
    for (const digest of world.hidden) {
      for (const repo of [a.repo, b.repo, d.repo]) {
        cases.push(...both("hidden image content", `/v2/${repo}/blobs/${digest}`));
        cases.push(...both("hidden image content", `/v2/${repo}/manifests/${digest}`));
      }
    }
    for (
      const path of [
        "canary.txt",
        "nested/deeper/canary.txt",
        "nested/layer.tar",
        "legacy.tar",
        "oci.tar",
      ]
    ) {
      const digest = sha256(await Deno.readFile(join(dir, path)));
      for (const repo of [a.repo, d.repo]) {
        cases.push(...both(`digest of the file "${path}"`, `/v2/${repo}/blobs/${digest}`));
      }
    }
    cases.push(...both("empty digest", `/v2/${a.repo}/blobs/`));
    cases.push(...both("empty reference", `/v2/${a.repo}/manifests/`));
    const outcomes = await run(world, cases);
    assert.ok(outcomes.length > 500, `${outcomes.length} digest requests`);
    assertClean("digests");
  });

  await t.step(
    "ranges: 206 with the exact slice, 416 with bytes */SIZE, or the whole blob",
    async () => {
      const targets: { label: string; repo: string; digest: string; size: number }[] = [
        { label: "legacy mid layer", repo: a.repo, digest: sha256(a.mid), size: a.mid.length },
        { label: "legacy big layer", repo: a.repo, digest: sha256(a.big), size: a.big.length },
        { label: "oci big layer", repo: d.repo, digest: sha256(d.big), size: d.big.length },
        { label: "oci small layer", repo: d.repo, digest: sha256(d.small), size: d.small.length },
        {
          label: "manifest as a blob",
          repo: a.repo,
          digest: a.manifest,
          size: world.known.get(a.manifest)!.bytes.length,
        },
      ];
      const cases: Case[] = [];
      const add = (blob: (typeof targets)[number], range: string | string[], expect: Expect) => {
        for (const method of ["GET", "HEAD"]) {
          const lines = (Array.isArray(range) ? range : [range]).map((r) => `Range: ${r}`);
          cases.push({
            label: `${blob.label} ${JSON.stringify(range)}`,
            request: { method, target: `/v2/${blob.repo}/blobs/${blob.digest}`, headers: lines },
            expect,
            repo: blob.repo,
            digest: blob.digest,
          });
        }
      };
      const whole = "200";
      for (const blob of targets) {
        const S = blob.size;
        const last = `206 0-${S - 1}`;
        add(blob, "bytes=0-0", exactly("206 0-0"));
        add(blob, "bytes=0-", exactly(last));
        add(blob, `bytes=${S - 1}-`, exactly(`206 ${S - 1}-${S - 1}`));
        add(blob, `bytes=${S - 1}-${S - 1}`, exactly(`206 ${S - 1}-${S - 1}`));
        add(blob, "bytes=1-", exactly(`206 1-${S - 1}`));
        add(blob, `bytes=${S >> 1}-${(S >> 1) + 99}`, exactly(`206 ${S >> 1}-${(S >> 1) + 99}`));
        add(blob, `bytes=${S}-`, exactly("416"));
        add(blob, `bytes=${S}-${S + 10}`, exactly("416"));
        add(blob, `bytes=${S + 1000}-`, exactly("416"));
        add(blob, `bytes=${"9".repeat(30)}-`, exactly("416"));
        add(blob, `bytes=${"9".repeat(400)}-`, exactly("416", whole));
        add(blob, `bytes=0-${S}`, exactly(last));
        add(blob, `bytes=0-${S * 1000}`, exactly(last));
        add(blob, `bytes=0-${"9".repeat(30)}`, exactly(last));
        add(blob, "bytes=10-5", exactly("416", whole));
        add(blob, `bytes=${S + 5}-${S + 1}`, exactly("416", whole));
        add(blob, "bytes=-1", exactly(`206 ${S - 1}-${S - 1}`));
        add(blob, "bytes=-100", exactly(`206 ${S - 100}-${S - 1}`));
        add(blob, `bytes=-${S}`, exactly(last));
        add(blob, `bytes=-${S + 1}`, exactly(last));
        add(blob, `bytes=-${S * 10}`, exactly(last));
        add(blob, `bytes=-${"9".repeat(30)}`, exactly(last));
        add(blob, "bytes=-0", exactly("416", whole));
        for (
          const garbage of [
            "bytes=-5-10",
            "bytes=-1-",
            "bytes=--1",
            "bytes=-",
            "bytes=",
            "bytes",
            "bytes 0-5",
            "bytes=abc",
            "bytes=0x10-0x20",
            "bytes=1e3-",
            "bytes=+5-",
            "bytes=5",
            "bytes=0-5 junk",
            "bytes=0-1.5",
            "bytes=-1.5",
            "items=0-5",
            "bytes=0-1,5-6",
            "bytes=0-0,-1",
            "bytes=0-5, 0-5",
            `bytes=${"0-0,".repeat(3000)}0-0`,
            "bytes=\u0661-\u0662",
            "",
          ]
        ) {
          add(blob, garbage, exactly(whole, "416"));
        }
        // Forms a server may honour or ignore; whichever it does, the bytes must be right.
        add(blob, "BYTES=0-5", exactly(whole, "206 0-5"));
        add(blob, "bytes= 0-5", exactly(whole, "206 0-5"));
        add(blob, "bytes=0-5\t", exactly(whole, "206 0-5"));
        add(blob, ["bytes=0-0", "bytes=1-1"], exactly(whole, "416", "400", "206 0-0", "206 1-1"));
      }
      // A zero-length blob: no byte range can be shown in a Content-Range.
      const empty = { label: "empty layer", repo: a.repo, digest: sha256(a.empty), size: 0 };
      for (
        const range of ["bytes=-5", "bytes=-1", "bytes=0-", "bytes=0-0", "bytes=-0", "bytes=5-"]
      ) {
        add(empty, range, exactly(whole, "416"));
      }
      add(empty, "", exactly(whole));
      // The manifest endpoint may serve manifests whole, Range or not; the bytes are checked either way.
      const lastByte = world.known.get(a.manifest)!.bytes.length - 1;
      for (const range of ["bytes=0-0", "bytes=99999-", "bytes=-1"]) {
        for (const method of ["GET", "HEAD"]) {
          cases.push({
            label: `manifest endpoint ${range}`,
            request: { method, target: `/v2/${a.repo}/manifests/1`, headers: [`Range: ${range}`] },
            expect: exactly("200", "206 0-0", `206 ${lastByte}-${lastByte}`, "416"),
            repo: a.repo,
            digest: a.manifest,
          });
        }
      }
      const outcomes = await run(world, cases, 8);
      // HEAD answers as GET does.
      for (let i = 0; i + 1 < cases.length; i += 2) {
        if (outcomes[i] !== outcomes[i + 1]) {
          problem(cases[i]!.label, `GET got ${outcomes[i]}, HEAD ${outcomes[i + 1]}`);
        }
      }
      assertClean("ranges");
    },
  );

  await t.step("write methods are refused with 405 and change nothing", async () => {
    const targets = [
      "/v2/",
      "/v2/_catalog",
      `/v2/${a.repo}/tags/list`,
      `/v2/${a.repo}/manifests/1`,
      `/v2/${a.repo}/manifests/evil`,
      `/v2/${a.repo}/manifests/${a.manifest}`,
      `/v2/${a.repo}/blobs/${sha256(a.mid)}`,
      `/v2/${a.repo}/blobs/uploads/`,
      `/v2/${a.repo}/blobs/uploads/?digest=${sha256("evil")}`,
      `/v2/${a.repo}/blobs/uploads/1234?digest=${sha256("evil")}`,
      `/v2/${a.repo}/blobs/uploads/?mount=${sha256(b.layer)}&from=${b.repo}`,
      `/v2/evil/blobs/uploads/`,
      "/v2/../../etc/passwd",
    ];
    const evil = encoder.encode(JSON.stringify({ schemaVersion: 2, mediaType: "evil" }));
    const cases: Case[] = [];
    for (const target of targets) {
      for (
        const method of [
          "PUT",
          "POST",
          "DELETE",
          "PATCH",
          "TRACE",
          "PROPFIND",
          "FOO",
          "get",
          "head",
        ]
      ) {
        const body = method === "PUT" || method === "POST" || method === "PATCH" ? evil : undefined;
        cases.push({
          label: `${method} ${target}`,
          request: {
            method,
            target,
            ...(body
              ? {
                body,
                headers: [
                  `Content-Length: ${body.length}`,
                  "Content-Type: application/octet-stream",
                ],
              }
              : {}),
          },
          expect: exactly("405", "400", "refused"),
        });
      }
      cases.push({
        label: `OPTIONS ${target}`,
        request: { method: "OPTIONS", target },
        expect: (o) => o === "405" || o === "204" || o === "200",
      });
    }
    // A body far larger than the handler would ever read, and a chunked one.
    const large = new Uint8Array(4 << 20).fill(0x41);
    cases.push({
      label: "PUT with a 4 MiB body",
      request: {
        method: "PUT",
        target: `/v2/${a.repo}/blobs/uploads/x?digest=${sha256(large)}`,
        body: large,
        headers: [`Content-Length: ${large.length}`],
      },
      expect: exactly("405", "refused"),
    });
    cases.push({
      label: "chunked PATCH",
      request: {
        method: "PATCH",
        target: `/v2/${a.repo}/blobs/uploads/x`,
        headers: ["Transfer-Encoding: chunked"],
        body: encoder.encode("5\r\nhello\r\n0\r\n\r\n"),
      },
      expect: exactly("405", "refused"),
    });
    cases.push({
      label: "CONNECT",
      request: { method: "CONNECT", target: reg.address },
      expect: (o) => refuse(o),
    });
    cases.push({
      label: "OPTIONS *",
      request: { method: "OPTIONS", target: "*" },
      expect: (o) => refuse(o) || o === "200" || o === "204",
    });
    await run(world, cases);
    // Nothing changed: the tags, manifests and blobs are what they were.
    const after: Case[] = [
      {
        label: "after writes: tag",
        request: get(`/v2/${a.repo}/manifests/1`),
        expect: exactly("200"),
        repo: a.repo,
        digest: a.manifest,
      },
      {
        label: "after writes: evil tag",
        request: get(`/v2/${a.repo}/manifests/evil`),
        expect: exactly("404"),
      },
      {
        label: "after writes: evil blob",
        request: get(`/v2/${a.repo}/blobs/${sha256("evil")}`),
        expect: exactly("404"),
      },
      {
        label: "after writes: big body",
        request: get(`/v2/${a.repo}/blobs/${sha256(large)}`),
        expect: exactly("404"),
      },
      {
        label: "after writes: no mount",
        request: get(`/v2/${a.repo}/blobs/${sha256(b.layer)}`),
        expect: exactly("404"),
      },
      { label: "after writes: catalog", request: get("/v2/_catalog"), expect: exactly("200") },
      {
        label: "after writes: tags",
        request: get(`/v2/${a.repo}/tags/list`),
        expect: exactly("200"),
      },
    ];
    await run(world, after);
    assertClean("methods");
  });

  await t.step(
    "HEAD answers as GET does, without a body, also pipelined on one connection",
    async () => {
      const targets: [string, Expect, string?][] = [
        ["/v2/", exactly("200")],
        ["/v2/_catalog", exactly("200")],
        [`/v2/${a.repo}/tags/list`, exactly("200")],
        [`/v2/${a.repo}/manifests/1`, exactly("200"), a.repo],
        [`/v2/${d.repo}/manifests/${d.index}`, exactly("200"), d.repo],
        [`/v2/${a.repo}/blobs/${sha256(a.big)}`, exactly("200"), a.repo],
        [`/v2/${a.repo}/blobs/${a.manifest}`, exactly("200"), a.repo],
        [`/v2/${a.repo}/blobs/${sha256(a.empty)}`, exactly("200"), a.repo],
        ["/v2/nope/manifests/1", exactly("404")],
        [`/v2/${a.repo}/manifests/nope`, exactly("404")],
        [`/v2/${a.repo}/blobs/${sha256("nope")}`, exactly("404")],
        [`/v2/${a.repo}/blobs/sha256:..%2f..%2fcanary.txt`, refuse],
        ["/v2/UPPER/manifests/1", exactly("400")],
        [`/v2/${a.repo}/nothing`, exactly("404")],
      ];
      const pairs = targets.map(([target, expect, repo]) =>
        ["GET", "HEAD"].map((method): Case => ({
          label: `HEAD/GET ${target}`,
          request: { method, target },
          expect,
          ...(repo ? { repo } : {}),
        })) as [Case, Case]
      );
      for (const [getCase, headCase] of pairs) {
        const [g, h] = [await send(reg, getCase.request), await send(reg, headCase.request)];
        judge(world, getCase, g);
        judge(world, headCase, h);
        if ("refused" in g || "refused" in h) {
          problem(getCase.label, "refused");
          continue;
        }
        g.headers.delete("date");
        h.headers.delete("date");
        if (g.status !== h.status) problem(getCase.label, `GET ${g.status}, HEAD ${h.status}`);
        const gh = JSON.stringify([...g.headers]);
        const hh = JSON.stringify([...h.headers]);
        if (gh !== hh) problem(getCase.label, `headers differ: GET ${gh} HEAD ${hh}`);
        if (Number(h.headers.get("Content-Length")) !== g.body.length) {
          problem(
            getCase.label,
            `HEAD Content-Length ${h.headers.get("Content-Length")}, GET body ${g.body.length}`,
          );
        }
      }
      // Pipelined: a HEAD that sent body bytes would shift every reply after it.
      const mid = `/v2/${a.repo}/blobs/${sha256(a.mid)}`;
      const sequence: Case[] = [];
      for (let i = 0; i < 60; i++) {
        sequence.push(
          {
            label: "pipelined HEAD blob",
            request: { method: "HEAD", target: mid },
            expect: exactly("200"),
            repo: a.repo,
            digest: sha256(a.mid),
          },
          {
            label: "pipelined HEAD 404",
            request: { method: "HEAD", target: `/v2/${a.repo}/blobs/${sha256(`x${i}`)}` },
            expect: exactly("404"),
          },
          {
            label: "pipelined GET range",
            request: { method: "GET", target: mid, headers: [`Range: bytes=${i}-${i + 9}`] },
            expect: exactly(`206 ${i}-${i + 9}`),
            repo: a.repo,
            digest: sha256(a.mid),
          },
          {
            label: "pipelined HEAD 416",
            request: { method: "HEAD", target: mid, headers: [`Range: bytes=${a.mid.length}-`] },
            expect: exactly("416"),
            repo: a.repo,
            digest: sha256(a.mid),
          },
          {
            label: "pipelined GET manifest",
            request: get(`/v2/${a.repo}/manifests/1`),
            expect: exactly("200"),
            repo: a.repo,
            digest: a.manifest,
          },
        );
      }
      sequence.push({
        label: "pipelined GET big",
        request: get(`/v2/${a.repo}/blobs/${sha256(a.big)}`, { headers: ["Range: bytes=5-"] }),
        expect: exactly(`206 5-${a.big.length - 1}`),
        repo: a.repo,
        digest: sha256(a.big),
      });
      const wire = concat(
        ...sequence.map((c, i) => requestBytes(reg, c.request, i === sequence.length - 1)),
      );
      const got = await roundTrip(reg, wire);
      assert.ok(typeof got !== "string", `pipelined requests got no reply: ${got}`);
      const replies = splitReplies(got, sequence.map((c) => c.request.method));
      assert.equal(replies.length, sequence.length, "one reply per pipelined request");
      replies.forEach((reply, i) => judge(world, sequence[i]!, reply));
      assertClean("HEAD and GET");
    },
  );

  await t.step(
    "HTTP/2 and HTTP/1.0 clients get exact blob bodies, Host header or not",
    async () => {
      for (const [repo, layer] of [[a.repo, a.big], [d.repo, d.big]] as const) {
        const path = `/v2/${repo}/blobs/${sha256(layer)}`;
        for (
          const [headers, want] of [
            [[], layer],
            [[["host", reg.address]], layer],
            [[["host", reg.address], ["range", "bytes=5-"]], layer.subarray(5)],
            [
              [["host", reg.address], ["range", `bytes=0-${(1 << 20) + 1}`]],
              layer.subarray(0, (1 << 20) + 2),
            ],
          ] as [[string, string][], Uint8Array][]
        ) {
          tally.requests++;
          const { data, end } = await h2Get(reg, path, headers);
          const label = `h2 ${path} ${JSON.stringify(headers)}`;
          if (indexOfBytes(data, CANARY_BYTES) >= 0) problem(label, "the canary was served", true);
          if (data.length !== want.length || sha256(data) !== sha256(want)) {
            problem(
              label,
              `${data.length} DATA bytes (${end}), the blob slice is ${want.length}`,
              true,
            );
          }
        }
        for (const host of [true, false]) {
          const c: Case = {
            label: `HTTP/1.0 ${host ? "with" : "without"} Host`,
            request: {
              ...get(path, { version: "1.0", headers: ["Range: bytes=3-"] }),
              noHost: !host,
            },
            expect: exactly(`206 3-${layer.length - 1}`),
            repo,
            digest: sha256(layer),
          };
          judge(world, c, await send(reg, c.request));
        }
      }
      assertClean("HTTP versions");
    },
  );

  await t.step(
    "floods: 2 x 2,000 HEAD and GET, 50 at a time, then 200 abandoned connections",
    async () => {
      const flood: Case[] = [];
      const mid = sha256(a.mid);
      const content =
        (label: string, target: string, repo: string, digest: string, range?: string) =>
        (method: string): Case => ({
          label,
          request: { method, target, ...(range ? { headers: [`Range: ${range}`] } : {}) },
          expect: exactly(
            range === undefined ? "200" : range === "bytes=100-199" ? "206 100-199" : "416",
          ),
          repo,
          digest,
        });
      const refused =
        (label: string, target: string, expect = refuse) => (method: string): Case => ({
          label,
          request: { method, target },
          expect,
        });
      const midPath = `/v2/${a.repo}/blobs/${mid}`;
      const rotation = [
        content("flood manifest", `/v2/${a.repo}/manifests/1`, a.repo, a.manifest),
        content("flood index", `/v2/${d.repo}/manifests/${d.index}`, d.repo, d.index),
        content("flood layer", midPath, a.repo, mid),
        content("flood range", midPath, a.repo, mid, "bytes=100-199"),
        content("flood 416", midPath, a.repo, mid, "bytes=9999999-"),
        refused("flood unknown blob", `/v2/${a.repo}/blobs/${sha256("nope")}`, exactly("404")),
        refused("flood bad digest", `/v2/${a.repo}/blobs/sha256:..%2f..%2fcanary.txt`),
        refused("flood bad name", "/v2/..%2f..%2fetc/manifests/1"),
        refused("flood hidden", `/v2/${a.repo}/blobs/${world.hidden[0]}`, exactly("404")),
        refused("flood foreign", `/v2/${a.repo}/blobs/${sha256(d.big)}`, exactly("404")),
      ];
      const bigBlob = content(
        "flood big",
        `/v2/${d.repo}/blobs/${sha256(d.big)}`,
        d.repo,
        sha256(d.big),
      );
      for (let i = 0; i < 2000; i++) {
        const make = i % 40 === 0 ? bigBlob : rotation[i % rotation.length]!;
        flood.push(make(i % 2 === 0 ? "GET" : "HEAD"));
      }
      const realPaths = await Promise.all(reg.archives.map((x) => Deno.realPath(x.path)));
      const base = `http://${reg.address}`;
      const round = async () => {
        const client = Deno.createHttpClient({});
        let next = 0;
        const worker = async () => {
          while (next < flood.length) {
            const c = flood[next++]!;
            const headers = new Headers((c.request.headers ?? []).map((l) => {
              const colon = l.indexOf(":");
              return [l.slice(0, colon), l.slice(colon + 1).trim()] as [string, string];
            }));
            let result: Result;
            try {
              const res = await fetch(base + c.request.target, {
                client,
                method: c.request.method,
                headers,
              });
              result = {
                status: res.status,
                headers: res.headers,
                body: await res.bytes(),
                extra: new Uint8Array(),
              };
            } catch (err) {
              result = { refused: err instanceof Error ? err.message : String(err) };
            }
            judge(world, c, result);
          }
        };
        try {
          await Promise.all(Array.from({ length: 50 }, worker));
        } finally {
          client.close();
        }
      };
      const fdsBefore = openFds();
      const rssBefore = Deno.memoryUsage().rss;
      await round();
      // A second round: what memory the first one took for good shows as growth here.
      const rssBetween = Deno.memoryUsage().rss;
      await round();
      // Abandoned connections: half a request each, held open while a pull
      // must still be answered, then gone.
      const conns = await Promise.all(
        Array.from({ length: 200 }, () => Deno.connect({ hostname: reg.hostname, port: reg.port })),
      );
      try {
        await Promise.all(conns.map((c, i) =>
          c.write(encoder.encode(
            i % 2
              ? `GET /v2/${a.repo}/blobs/${mid} HTTP/1.1\r\nHost: x\r\n`
              : `HEAD /v2/${a.repo}/manifests/1 HTTP/1.1\r\nHo`,
          ))
        ));
        const meanwhile = content("pull beside abandoned connections", midPath, a.repo, mid)("GET");
        judge(world, meanwhile, await send(reg, meanwhile.request));
      } finally {
        for (const c of conns) closeQuietly(c);
      }
      const rssAfter = Deno.memoryUsage().rss;
      if (fdsBefore !== undefined) {
        await pollUntil(() => (openFds() ?? 0) <= fdsBefore, 5000);
        for (const path of realPaths) assert.equal(fdsOn(path), 1, `descriptors open on ${path}`);
      }
      const fdsAfter = openFds();
      figures = {
        rssBefore,
        rssBetween,
        rssAfter,
        fdsBefore: fdsBefore ?? 0,
        fdsAfter: fdsAfter ?? 0,
      };
      assert.ok(
        rssAfter - rssBetween < 64 * MiB,
        `RSS grew ${((rssAfter - rssBetween) / MiB).toFixed(1)} MiB in the second round`,
      );
      assert.ok(
        rssAfter - rssBefore < 256 * MiB,
        `RSS grew ${((rssAfter - rssBefore) / MiB).toFixed(1)} MiB`,
      );
      if (fdsBefore !== undefined) {
        assert.ok(
          fdsAfter! <= fdsBefore,
          `descriptors ${fdsBefore} -> ${fdsAfter}`,
        );
      }
      assertClean("floods");
    },
  );

  await t.step("positive control after: a full pull still works", async () => {
    const cases: Case[] = [];
    for (
      const [repo, tag, digest] of [[a.repo, "1", a.manifest], [d.repo, "1", d.index]] as const
    ) {
      cases.push({
        label: "final manifest",
        request: get(`/v2/${repo}/manifests/${tag}`),
        expect: exactly("200"),
        repo,
        digest,
      });
    }
    for (const [digest, k] of world.known) {
      for (const repo of k.repos) {
        cases.push({
          label: "final blob",
          request: get(`/v2/${repo}/blobs/${digest}`),
          expect: exactly("200"),
          repo,
          digest,
        });
      }
    }
    await run(world, cases);
    assertClean("positive control after");
  });

  const mib = (bytes: number) => (bytes / MiB).toFixed(1);
  const signed = (n: number, text = String(n)) => `${n >= 0 ? "+" : ""}${text}`;
  const rss = figures.rssAfter - figures.rssBefore;
  const fds = figures.fdsAfter - figures.fdsBefore;
  console.log(
    `registry hostile: ${tally.requests} requests, ${tally.refused} refused cleanly, ` +
      `${tally.outside} served outside the archive, ${tally.fiveXX} 5xx, ` +
      `rss ${signed(rss, mib(rss))} MiB (test process, server in it: ${
        mib(figures.rssBefore)
      } -> ` +
      `${mib(figures.rssBetween)} -> ${mib(figures.rssAfter)} MiB over two floods), ` +
      `fds ${signed(fds)} (${figures.fdsBefore} -> ${figures.fdsAfter}), ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  assert.equal(tally.fiveXX, 0);
  assert.equal(tally.outside, 0);
});
