/**
 * An image of an OCI image layout inside an archive (`docker save` on Docker
 * 25+, `skopeo copy ... oci-archive:`): one descriptor of `index.json` and
 * everything reachable from it under `blobs/<alg>/<hex>`, served as stored.
 * Nothing is re-encoded, so every digest stays the one the archive names.
 */
import { type ArchiveEntries, sha256Bytes } from "./archive_entries.ts";
import type { ArchiveImage } from "./archive_image.ts";
import type { Manifest, RegistryBlob } from "./image_content.ts";
import { INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, OCI_INDEX, OCI_MANIFEST } from "./media_types.ts";

export interface Descriptor {
  readonly mediaType?: string;
  readonly digest: string;
  readonly size?: number;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** `<algorithm>:<encoded>` as the OCI image spec defines it. */
const DIGEST_FORMAT = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
/** Indexes of indexes happen (attestations, nested platforms); deeper is a loop or an attack. */
const MAX_NESTING = 8;

interface Walked {
  manifests: Map<string, Manifest>;
  /** Digests of configs and layers reachable from the root. */
  blobs: Set<string>;
  configs: string[];
}

export class OciImage implements ArchiveImage {
  readonly layout = "oci";
  readonly #entries: ArchiveEntries;
  readonly #root: Descriptor;
  readonly #names: string[] = [];
  readonly #ids: string[];
  #walked: Promise<Walked> | undefined;

  constructor(entries: ArchiveEntries, root: Descriptor) {
    this.#entries = entries;
    this.#root = root;
    this.#ids = [root.digest];
  }

  get archivePath(): string {
    return this.#entries.path;
  }

  get rootDigest(): string {
    return this.#root.digest;
  }

  get names(): readonly string[] {
    return this.#names;
  }

  get ids(): readonly string[] {
    return this.#ids;
  }

  /** Adds tags found elsewhere (another index.json entry, manifest.json RepoTags). */
  addNames(names: Iterable<string>): void {
    for (const name of names) if (!this.#names.includes(name)) this.#names.push(name);
  }

  /** Config digests of every image manifest reachable from the root (Docker's image IDs). */
  async configDigests(): Promise<readonly string[]> {
    const { configs } = await this.#walk();
    for (const c of configs) if (!this.#ids.includes(c)) this.#ids.push(c);
    return configs;
  }

  async rootManifest(): Promise<Manifest> {
    const walked = await this.#walk();
    const root = walked.manifests.get(this.#root.digest);
    if (!root) throw new Error(`Root manifest "${this.#root.digest}" was not loaded`);
    return root;
  }

  async manifest(digest: string): Promise<Manifest | undefined> {
    return (await this.#walk()).manifests.get(digest);
  }

  async blob(digest: string): Promise<RegistryBlob | undefined> {
    const { blobs } = await this.#walk();
    if (!blobs.has(digest)) return undefined;
    const entry = this.#entries.entry(blobPath(digest));
    return entry ? this.#entries.blob(entry, digest) : undefined;
  }

  #walk(): Promise<Walked> {
    if (!this.#walked) {
      this.#walked = this.#walkFrom();
      this.#walked.catch(() => (this.#walked = undefined));
    }
    return this.#walked;
  }

  async #walkFrom(): Promise<Walked> {
    const walked: Walked = { manifests: new Map(), blobs: new Set(), configs: [] };
    const root = await this.#load(this.#root);
    if (!root) {
      throw new Error(
        `Archive "${this.archivePath}" is incomplete: manifest "${this.#root.digest}" named by "index.json" is not in it`,
      );
    }
    await this.#visit(root, walked, 0);
    return walked;
  }

  async #visit(manifest: Manifest, walked: Walked, depth: number): Promise<void> {
    if (walked.manifests.has(manifest.digest)) return;
    if (depth > MAX_NESTING) {
      throw new Error(`Archive "${this.archivePath}": manifests nest deeper than ${MAX_NESTING}`);
    }
    walked.manifests.set(manifest.digest, manifest);
    const json = parseDocument(
      manifest.bytes,
      () => `manifest "${manifest.digest}"`,
      this.archivePath,
    );
    if (INDEX_MEDIA_TYPES.has(manifest.mediaType)) {
      for (const child of descriptors(json.manifests)) {
        if (child.mediaType === undefined || MANIFEST_MEDIA_TYPES.has(child.mediaType)) {
          // Platforms the saver left out (containerd keeps only what it pulled) stay unknown.
          const loaded = await this.#load(child);
          if (loaded) await this.#visit(loaded, walked, depth + 1);
        } else {
          walked.blobs.add(child.digest);
        }
      }
      return;
    }
    const [config] = descriptors([json.config]);
    if (config) {
      walked.blobs.add(config.digest);
      walked.configs.push(config.digest);
    }
    for (const layer of descriptors(json.layers)) walked.blobs.add(layer.digest);
  }

  /** Reads a manifest blob and checks it against its descriptor; undefined when absent. */
  async #load(descriptor: Descriptor): Promise<Manifest | undefined> {
    const entry = this.#entries.entry(blobPath(descriptor.digest));
    if (!entry) return undefined;
    const bytes = await this.#entries.readAll(entry, "manifest");
    const digest = sha256Bytes(bytes);
    if (descriptor.digest.startsWith("sha256:") && digest !== descriptor.digest) {
      throw new Error(
        `Archive "${this.archivePath}" is corrupt: blob "${entry.name}" has digest "${digest}"`,
      );
    }
    if (descriptor.size !== undefined && descriptor.size !== bytes.length) {
      throw new Error(
        `Archive "${this.archivePath}" is corrupt: blob "${entry.name}" has ${bytes.length} bytes, its descriptor says ${descriptor.size}`,
      );
    }
    const json = parseDocument(bytes, () => `manifest "${entry.name}"`, this.archivePath);
    const mediaType = descriptor.mediaType ??
      (typeof json.mediaType === "string" ? json.mediaType : undefined) ??
      (Array.isArray(json.manifests) ? OCI_INDEX : OCI_MANIFEST);
    return { mediaType, digest: descriptor.digest, bytes };
  }
}

/** Where an OCI layout keeps the blob with `digest`. */
export function blobPath(digest: string): string {
  const [algorithm, encoded] = digest.split(":", 2);
  return `blobs/${algorithm}/${encoded}`;
}

/** Keeps the well-formed descriptors of a JSON list; anything else is not ours to serve. */
export function descriptors(value: unknown): Descriptor[] {
  if (!Array.isArray(value)) return [];
  const out: Descriptor[] = [];
  for (const item of value) {
    if (typeof item !== "object" || item === null) continue;
    const { mediaType, digest, size, annotations } = item as Record<string, unknown>;
    if (typeof digest !== "string" || !DIGEST_FORMAT.test(digest)) continue;
    out.push({
      digest,
      ...(typeof mediaType === "string" ? { mediaType } : {}),
      ...(typeof size === "number" ? { size } : {}),
      ...(isStringRecord(annotations) ? { annotations } : {}),
    });
  }
  return out;
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === "string");
}

function parseDocument(
  bytes: Uint8Array,
  what: () => string,
  archivePath: string,
): Record<string, unknown> {
  try {
    const json: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof json === "object" && json !== null && !Array.isArray(json)) {
      return json as Record<string, unknown>;
    }
    throw new Error("not a JSON object");
  } catch (err) {
    throw new Error(
      `Cannot parse ${what()} in "${archivePath}": ${
        err instanceof Error ? err.message : String(err)
      }`,
    );
  }
}
