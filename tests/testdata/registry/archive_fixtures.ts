/**
 * Synthetic `docker save` archives in both layouts, built in memory with the
 * test tar writer: small enough for unit tests, shaped like what Docker 20.10
 * (legacy) and Docker 25+ (OCI layout plus manifest.json) write, with the
 * expected digests returned for assertions.
 */
import { createHash } from "node:crypto";
import { tarBytes, type TarInput } from "./tar_writer.ts";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";

const encoder = new TextEncoder();

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function hex(digest: string): string {
  return digest.slice("sha256:".length);
}

/** Distinct bytes of a given size, standing in for a layer tar. */
export function fakeLayer(seed: string, size = 1000): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  const pattern = encoder.encode(`${seed}|`);
  for (let i = 0; i < size; i++) out[i] = pattern[i % pattern.length] ?? 0;
  return out;
}

/**
 * Pseudo-random bytes (xorshift32 from `seed`) with no short period, so a
 * body shifted by any offset never matches: for tests of byte-exact serving.
 */
export function noiseLayer(size: number, seed = 0x2545f491): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export interface BuiltImage {
  config: Uint8Array;
  configDigest: string;
  layerDigests: string[];
  layers: Uint8Array[];
  /** OCI layout only. */
  manifestDigest?: string;
  /** OCI layout with `wrapInIndex` only. */
  indexDigest?: string;
}

function configFor(layers: Uint8Array[], created: string): Uint8Array {
  return encoder.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    created,
    config: { Cmd: ["/bin/true"] },
    rootfs: { type: "layers", diff_ids: layers.map((l) => sha256(l)) },
  }));
}

export interface LegacyImageInput {
  repoTags: string[] | null;
  layers: Uint8Array[];
  /** Replaces the config (for inconsistent-archive tests). */
  config?: Uint8Array;
}

export interface LegacyOptions {
  /** Directory name of layer `i` of image `n` (long names exercise PAX/GNU headers). */
  layerDir?: (image: number, layer: number) => string;
  longNames?: TarInput["longNames"];
  /** Prefix every entry with "./" as `tar -C dir -c .` does. */
  dotSlash?: boolean;
  /** Leave out this layer file (for missing-file tests). */
  omit?: string;
}

/**
 * The Docker < 25 layout: `<id>.json` configs, `<dir>/layer.tar` layers
 * (a layer already written becomes a symlink, as Docker does) and
 * `manifest.json`.
 */
export function legacyArchive(
  images: LegacyImageInput[],
  options: LegacyOptions = {},
): { bytes: Uint8Array<ArrayBuffer>; images: BuiltImage[] } {
  const entries: TarInput[] = [];
  const written = new Map<string, string>();
  const manifest: unknown[] = [];
  const built: BuiltImage[] = [];
  const p = (name: string) => (options.dotSlash ? `./${name}` : name);
  const longNames = options.longNames ? { longNames: options.longNames } : {};
  images.forEach((image, n) => {
    const layerPaths: string[] = [];
    image.layers.forEach((layer, i) => {
      const digest = sha256(layer);
      const dir = options.layerDir?.(n, i) ?? hex(sha256(`${n}/${i}/${digest}`));
      const path = `${dir}/layer.tar`;
      entries.push({ name: p(`${dir}/`), type: "directory", ...longNames });
      entries.push({ name: p(`${dir}/VERSION`), data: "1.0", ...longNames });
      const first = written.get(digest);
      if (first) {
        const depth = dir.split("/").length;
        entries.push({
          name: p(path),
          type: "symlink",
          linkName: `${"../".repeat(depth)}${first}`,
          ...longNames,
        });
      } else if (path !== options.omit) {
        entries.push({ name: p(path), data: layer, ...longNames });
        written.set(digest, path);
      }
      layerPaths.push(path);
    });
    const config = image.config ?? configFor(image.layers, `2024-01-0${n + 1}T00:00:00Z`);
    const configDigest = sha256(config);
    entries.push({ name: p(`${hex(configDigest)}.json`), data: config });
    manifest.push({
      Config: `${hex(configDigest)}.json`,
      RepoTags: image.repoTags,
      Layers: layerPaths,
    });
    built.push({
      config,
      configDigest,
      layerDigests: image.layers.map((l) => sha256(l)),
      layers: image.layers,
    });
  });
  entries.push({ name: p("manifest.json"), data: JSON.stringify(manifest) });
  entries.push({ name: p("repositories"), data: "{}" });
  return { bytes: tarBytes(entries), images: built };
}

export interface OciImageInput {
  /** Full names as containerd annotates them ("docker.io/library/foo:1"). */
  names: string[];
  layers: Uint8Array[];
  layerMediaType?: string;
}

export interface OciOptions {
  /** "docker": one index.json descriptor per tag, ref.name = bare tag; "skopeo": ref.name = "name:tag". */
  annotations?: "docker" | "skopeo" | "none";
  /** Write Docker's manifest.json next to the layout (Docker 25+). */
  manifestJson?: boolean;
  /** Make the root an index naming this platform plus an arm64 manifest not in the archive. */
  wrapInIndex?: boolean;
  dotSlash?: boolean;
  /** Replace the bytes stored for the first image's manifest (corruption tests). */
  corruptManifest?: boolean;
}

/** The Docker 25+ layout: oci-layout, index.json, blobs/sha256/*, manifest.json. */
export function ociArchive(
  images: OciImageInput[],
  options: OciOptions = {},
): { bytes: Uint8Array<ArrayBuffer>; images: BuiltImage[] } {
  const blobs = new Map<string, Uint8Array>();
  const add = (bytes: Uint8Array) => {
    const digest = sha256(bytes);
    blobs.set(digest, bytes);
    return { digest, size: bytes.length };
  };
  const indexManifests: unknown[] = [];
  const saveManifest: unknown[] = [];
  const built: BuiltImage[] = [];
  images.forEach((image, n) => {
    const config = configFor(image.layers, `2024-02-0${n + 1}T00:00:00Z`);
    const configDesc = add(config);
    const layerDescs = image.layers.map((l) => ({
      mediaType: image.layerMediaType ?? OCI_LAYER_TAR,
      ...add(l),
    }));
    const manifestBytes = encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, ...configDesc },
      layers: layerDescs,
    }));
    const manifestDesc = add(manifestBytes);
    if (options.corruptManifest && n === 0) {
      blobs.set(
        manifestDesc.digest,
        encoder.encode(JSON.stringify({ schemaVersion: 2, layers: [] })),
      );
    }
    let root: { mediaType: string; digest: string; size: number } = {
      mediaType: OCI_MANIFEST,
      ...manifestDesc,
    };
    let indexDigest: string | undefined;
    if (options.wrapInIndex) {
      const missing = sha256(`missing arm64 manifest ${n}`);
      const indexBytes = encoder.encode(JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { ...root, platform: { architecture: "amd64", os: "linux" } },
          {
            mediaType: OCI_MANIFEST,
            digest: missing,
            size: 123,
            platform: { architecture: "arm64", os: "linux" },
          },
        ],
      }));
      const indexDesc = add(indexBytes);
      indexDigest = indexDesc.digest;
      root = { mediaType: OCI_INDEX, ...indexDesc };
    }
    const annotations = options.annotations ?? "docker";
    if (annotations === "none" || image.names.length === 0) {
      indexManifests.push(root);
    }
    for (const name of annotations === "none" ? [] : image.names) {
      const tag = name.slice(name.lastIndexOf(":") + 1);
      indexManifests.push({
        ...root,
        annotations: annotations === "docker"
          ? { "io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag }
          : { "org.opencontainers.image.ref.name": name.replace(/^docker\.io\/(library\/)?/, "") },
      });
    }
    saveManifest.push({
      Config: `blobs/sha256/${hex(configDesc.digest)}`,
      RepoTags: image.names.map((name) => name.replace(/^docker\.io\/(library\/)?/, "")),
      Layers: layerDescs.map((l) => `blobs/sha256/${hex(l.digest)}`),
    });
    built.push({
      config,
      configDigest: configDesc.digest,
      layerDigests: layerDescs.map((l) => l.digest),
      layers: image.layers,
      manifestDigest: manifestDesc.digest,
      ...(indexDigest ? { indexDigest } : {}),
    });
  });

  const p = (name: string) => (options.dotSlash ? `./${name}` : name);
  const entries: TarInput[] = [
    { name: p("blobs/"), type: "directory" },
    { name: p("blobs/sha256/"), type: "directory" },
  ];
  for (const [digest, bytes] of blobs) {
    entries.push({ name: p(`blobs/sha256/${hex(digest)}`), data: bytes });
  }
  entries.push({ name: p("oci-layout"), data: JSON.stringify({ imageLayoutVersion: "1.0.0" }) });
  entries.push({
    name: p("index.json"),
    data: JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: indexManifests }),
  });
  if (options.manifestJson ?? true) {
    entries.push({ name: p("manifest.json"), data: JSON.stringify(saveManifest) });
  }
  return { bytes: tarBytes(entries), images: built };
}

/** Writes `bytes` to a temporary file removed on dispose. */
export async function tempArchive(
  bytes: Uint8Array,
): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempFile({ prefix: "bottle-registry-test-", suffix: ".tar" });
  await Deno.writeFile(path, bytes);
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path).catch(() => {}),
  };
}
