/**
 * Test helpers around the fake smolvm: a sandbox (state dir, invocation log,
 * environment), a tiny tar writer for `docker save`-shaped archives, and a
 * throwaway OCI registry on 127.0.0.1 serving a hand-built image.
 */
import { run } from "../../../src/proc/runner.ts";
import { guestContainer, removeGuests } from "./fake_guest.ts";

/** Path of the fake `smolvm` executable. */
export const FAKE_SMOLVM = new URL("./smolvm", import.meta.url).pathname;

export interface FakeSmolvmOptions {
  /** What `--version` reports (FAKE_SMOLVM_VERSION). */
  version?: string;
  /** Verbs to fail on purpose (FAKE_SMOLVM_FAIL). */
  fail?: string;
  /**
   * Run each machine as a container of its image (the fake's default);
   * without it the sandbox sets FAKE_SMOLVM_GUEST=host, for tests of the
   * fake's argv contract that boot no image.
   */
  dockerGuests?: boolean;
}

export interface FakeSmolvm extends AsyncDisposable {
  dir: string;
  state: string;
  logPath: string;
  /** Environment that points the fake at this sandbox. */
  env: Record<string, string>;
  /** argv of every invocation so far, in order. */
  log(): Promise<string[][]>;
  /** The fake's record for a machine, or undefined when there is none. */
  machine(name: string): Promise<Record<string, unknown> | undefined>;
  /** Guest root of a machine (where `machine cp` puts files). */
  guestRoot(name: string): string;
  /** The container a machine runs as, with `dockerGuests`. */
  guestContainer(name: string): string;
  /** Runs the fake directly. */
  run(
    args: string[],
    options?: { stdin?: Uint8Array | string; env?: Record<string, string> },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** A fresh sandbox; removed on dispose unless BOTTLE_TEST_KEEP=1. */
export async function fakeSmolvm(options: FakeSmolvmOptions = {}): Promise<FakeSmolvm> {
  const dir = await Deno.makeTempDir({ prefix: "fake-smolvm-" });
  const state = `${dir}/state`;
  const logPath = `${dir}/invocations.jsonl`;
  const env: Record<string, string> = {
    FAKE_SMOLVM_STATE: state,
    FAKE_SMOLVM_LOG: logPath,
    ...(options.version ? { FAKE_SMOLVM_VERSION: options.version } : {}),
    ...(options.fail ? { FAKE_SMOLVM_FAIL: options.fail } : {}),
    FAKE_SMOLVM_GUEST: options.dockerGuests ? "docker" : "host",
  };
  return {
    dir,
    state,
    logPath,
    env,
    async log() {
      let text = "";
      try {
        text = await Deno.readTextFile(logPath);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
      return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l).argv as string[]);
    },
    async machine(name) {
      try {
        return JSON.parse(await Deno.readTextFile(`${state}/machines/${name}.json`));
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return undefined;
        throw err;
      }
    },
    guestRoot: (name) => `${state}/guests/${name}`,
    guestContainer: (name) => guestContainer(state, name),
    async run(args, o = {}) {
      const res = await run([FAKE_SMOLVM, ...args], {
        env: { ...env, ...o.env },
        ...(o.stdin !== undefined ? { stdin: o.stdin } : {}),
        check: false,
      });
      return { code: res.code, stdout: res.stdout, stderr: res.stderr };
    },
    async [Symbol.asyncDispose]() {
      if (options.dockerGuests) await removeGuests(state);
      if (Deno.env.get("BOTTLE_TEST_KEEP") === "1") {
        console.error(`BOTTLE_TEST_KEEP=1: keeping ${dir}`);
        return;
      }
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A minimal ustar archive of regular files (enough for `docker save` shapes). */
export function makeTar(entries: { name: string; data: string | Uint8Array }[]): Uint8Array {
  const enc = new TextEncoder();
  const blocks: Uint8Array[] = [];
  for (const e of entries) {
    const data = typeof e.data === "string" ? enc.encode(e.data) : e.data;
    const h = new Uint8Array(512);
    const put = (s: string, at: number, len: number) => h.set(enc.encode(s).subarray(0, len), at);
    const octal = (n: number, len: number) => n.toString(8).padStart(len - 1, "0") + "\0";
    put(e.name, 0, 100);
    put(octal(0o644, 8), 100, 8);
    put(octal(0, 8), 108, 8);
    put(octal(0, 8), 116, 8);
    put(octal(data.length, 12), 124, 12);
    put(octal(0, 12), 136, 12);
    put("        ", 148, 8);
    put("0", 156, 1);
    put("ustar\0", 257, 6);
    put("00", 263, 2);
    const sum = h.reduce((a, b) => a + b, 0);
    put(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8);
    blocks.push(h);
    const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
    padded.set(data);
    blocks.push(padded);
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let o = 0;
  for (const b of blocks) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}

/** A legacy (Docker < 25) `docker save` archive. */
export function legacyDockerSave(): Uint8Array {
  return makeTar([
    { name: "abc123/layer.tar", data: makeTar([{ name: "hello.txt", data: "hi\n" }]) },
    { name: "abc123.json", data: "{}" },
    {
      name: "manifest.json",
      data: JSON.stringify([{
        Config: "abc123.json",
        RepoTags: ["x:1"],
        Layers: ["abc123/layer.tar"],
      }]),
    },
  ]);
}

/** An OCI-layout (Docker 25+) `docker save` archive. */
export function ociDockerSave(): Uint8Array {
  return makeTar([
    { name: "oci-layout", data: '{"imageLayoutVersion":"1.0.0"}' },
    { name: "index.json", data: '{"schemaVersion":2,"manifests":[]}' },
    { name: "manifest.json", data: "[]" },
    { name: "blobs/sha256/00", data: "x" },
  ]);
}

export async function sha256(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data);
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export interface TestImage {
  /** Manifest (or index) digest the tag points at. */
  digest: string;
  /** Digest of the platform manifest (equals `digest` without an index). */
  manifestDigest: string;
  configDigest: string;
  layerDigests: string[];
}

export interface TestRegistry extends AsyncDisposable {
  /** `127.0.0.1:PORT` */
  host: string;
  /** Adds `repo:tag` built from these layers. */
  addImage(
    repo: string,
    tag: string,
    layers: Uint8Array[],
    o?: { format?: "oci" | "docker"; index?: boolean },
  ): Promise<TestImage>;
  /** Serves wrong bytes for this blob from now on. */
  corrupt(digest: string): void;
  /** Answers 404 for this blob from now on. */
  drop(digest: string): void;
  /** Request paths seen, in order. */
  requests: string[];
}

/** An anonymous, read-only OCI distribution registry on 127.0.0.1 (plain http). */
export function testRegistry(): TestRegistry {
  type Bytes = Uint8Array<ArrayBuffer>;
  const manifests = new Map<string, { body: Bytes; mediaType: string }>(); // key: repo@ref
  const blobs = new Map<string, Bytes>();
  const corrupted = new Set<string>();
  const requests: string[] = [];
  const enc = new TextEncoder();

  const handler = (req: Request): Response => {
    const url = new URL(req.url);
    requests.push(`${req.method} ${url.pathname}`);
    if (req.method !== "GET") return new Response(null, { status: 405 });
    if (url.pathname === "/v2/") return Response.json({});
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (m) {
      const [, repo, kind, ref] = m as unknown as [string, string, string, string];
      if (kind === "manifests") {
        const found = manifests.get(`${repo}@${ref}`);
        if (found) {
          return new Response(found.body, { headers: { "content-type": found.mediaType } });
        }
        return Response.json({ errors: [{ code: "MANIFEST_UNKNOWN" }] }, { status: 404 });
      }
      const blob = blobs.get(ref);
      if (blob) {
        const body = corrupted.has(ref) ? blob.map((b) => b ^ 0xff) : blob;
        return new Response(body);
      }
      return Response.json({ errors: [{ code: "BLOB_UNKNOWN" }] }, { status: 404 });
    }
    return new Response("not found", { status: 404 });
  };

  const ac = new AbortController();
  const server = Deno.serve({
    port: 0,
    hostname: "127.0.0.1",
    signal: ac.signal,
    onListen: () => {},
    // The fake tries https first; the TLS hello it sends here is not HTTP.
    onError: () => new Response("bad request", { status: 400 }),
  }, handler);
  const host = `127.0.0.1:${server.addr.port}`;

  const putBlob = async (bytes: Uint8Array) => {
    const data = new Uint8Array(bytes);
    const digest = await sha256(data);
    blobs.set(digest, data);
    return { digest, size: data.length };
  };

  return {
    host,
    requests,
    corrupt: (d) => void corrupted.add(d),
    drop: (d) => void blobs.delete(d),
    async addImage(repo, tag, layers, o = {}) {
      const oci = (o.format ?? "oci") === "oci";
      const config = await putBlob(enc.encode(JSON.stringify({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: [] },
      })));
      const layerDescs = [];
      for (const l of layers) {
        const b = await putBlob(l);
        layerDescs.push({
          mediaType: oci
            ? "application/vnd.oci.image.layer.v1.tar+gzip"
            : "application/vnd.docker.image.rootfs.diff.tar.gzip",
          ...b,
        });
      }
      const mediaType = oci
        ? "application/vnd.oci.image.manifest.v1+json"
        : "application/vnd.docker.distribution.manifest.v2+json";
      const manifest = enc.encode(JSON.stringify({
        schemaVersion: 2,
        mediaType,
        config: {
          mediaType: oci
            ? "application/vnd.oci.image.config.v1+json"
            : "application/vnd.docker.container.image.v1+json",
          ...config,
        },
        layers: layerDescs,
      }));
      const manifestDigest = await sha256(manifest);
      manifests.set(`${repo}@${manifestDigest}`, { body: manifest, mediaType });
      let digest = manifestDigest;
      let top = { body: manifest, mediaType };
      if (o.index) {
        // An arm64 decoy first, so picking linux/amd64 is observable.
        const decoy = enc.encode(JSON.stringify({ schemaVersion: 2, mediaType, decoy: true }));
        const decoyDigest = await sha256(decoy);
        manifests.set(`${repo}@${decoyDigest}`, { body: decoy, mediaType });
        const indexType = oci
          ? "application/vnd.oci.image.index.v1+json"
          : "application/vnd.docker.distribution.manifest.list.v2+json";
        const index = enc.encode(JSON.stringify({
          schemaVersion: 2,
          mediaType: indexType,
          manifests: [
            {
              mediaType,
              digest: decoyDigest,
              size: decoy.length,
              platform: { os: "linux", architecture: "arm64" },
            },
            {
              mediaType,
              digest: manifestDigest,
              size: manifest.length,
              platform: { os: "linux", architecture: "amd64" },
            },
          ],
        }));
        digest = await sha256(index);
        top = { body: index, mediaType: indexType };
        manifests.set(`${repo}@${digest}`, top);
      }
      manifests.set(`${repo}@${tag}`, top);
      return {
        digest,
        manifestDigest,
        configDigest: config.digest,
        layerDigests: layerDescs.map((l) => l.digest),
      };
    },
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}
