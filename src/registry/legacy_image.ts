/**
 * An image described by a `manifest.json` entry of `docker save` (Config,
 * RepoTags, Layers). The archive holds no registry manifest for it, so one is
 * synthesized: Docker schema2 with the config and the uncompressed layer tars
 * as they are, their digests computed by streaming hash on first use. Clients
 * then verify exactly the bytes that sit in the archive, and the pulled image
 * keeps its ID (the config digest).
 */
import { type ArchiveEntries, sha256Bytes } from "./archive_entries.ts";
import type { ArchiveImage } from "./archive_image.ts";
import { familiarReference, isDigest } from "./image_reference.ts";
import type { Manifest, RegistryBlob } from "./image_content.ts";
import { DOCKER_CONFIG, DOCKER_LAYER_TAR, DOCKER_MANIFEST_V2 } from "./media_types.ts";
import type { TarEntry } from "./tar_index.ts";

/** One element of `manifest.json`. */
export interface SaveManifestEntry {
  readonly config: string;
  readonly repoTags: readonly string[];
  readonly layers: readonly string[];
}

/** Validates the parsed `manifest.json` of a `docker save` archive. */
export function parseSaveManifest(json: unknown, archivePath: string): SaveManifestEntry[] {
  const fail = (detail: string) =>
    new Error(`Cannot read "manifest.json" in "${archivePath}": ${detail}`);
  if (!Array.isArray(json)) throw fail("expected a JSON array");
  return json.map((item: unknown, i) => {
    if (typeof item !== "object" || item === null) throw fail(`entry ${i} is not an object`);
    const { Config, RepoTags, Layers } = item as Record<string, unknown>;
    if (typeof Config !== "string") throw fail(`entry ${i} has no "Config" string`);
    if (!Array.isArray(Layers) || !Layers.every((l) => typeof l === "string")) {
      throw fail(`entry ${i} has no "Layers" list of strings`);
    }
    if (RepoTags !== null && RepoTags !== undefined) {
      if (!Array.isArray(RepoTags) || !RepoTags.every((t) => typeof t === "string")) {
        throw fail(`entry ${i} has a "RepoTags" that is not a list of strings`);
      }
    }
    return {
      config: Config,
      repoTags: (RepoTags ?? []) as string[],
      layers: Layers as string[],
    };
  });
}

interface Prepared {
  manifest: Manifest;
  blobs: Map<string, RegistryBlob>;
}

export class LegacyImage implements ArchiveImage {
  readonly layout = "legacy";
  readonly names: readonly string[];
  readonly ids: readonly string[];
  readonly #entries: ArchiveEntries;
  readonly #config: TarEntry;
  readonly #layers: readonly TarEntry[];
  #prepared: Promise<Prepared> | undefined;

  /** Checks that every file the entry names is in the archive; hashes nothing yet. */
  constructor(entries: ArchiveEntries, entry: SaveManifestEntry) {
    this.#entries = entries;
    const find = (name: string, what: string) => {
      const found = entries.entry(name);
      if (!found) {
        throw new Error(
          `Cannot read "manifest.json" in "${entries.path}": ${what} "${name}" is not in the archive`,
        );
      }
      return found;
    };
    this.#config = find(entry.config, "config");
    this.#layers = entry.layers.map((l) => find(l, "layer"));
    this.names = entry.repoTags.map(familiarReference);
    // Docker names the config after its digest ("<hex>.json" or "blobs/sha256/<hex>").
    const hex = /([0-9a-f]{64})(\.json)?$/.exec(entry.config)?.[1];
    this.ids = hex && isDigest(`sha256:${hex}`) ? [`sha256:${hex}`] : [];
  }

  get archivePath(): string {
    return this.#entries.path;
  }

  async rootManifest(): Promise<Manifest> {
    return (await this.#prepare()).manifest;
  }

  async manifest(digest: string): Promise<Manifest | undefined> {
    const { manifest } = await this.#prepare();
    return manifest.digest === digest ? manifest : undefined;
  }

  async blob(digest: string): Promise<RegistryBlob | undefined> {
    return (await this.#prepare()).blobs.get(digest);
  }

  #prepare(): Promise<Prepared> {
    if (!this.#prepared) {
      this.#prepared = this.#synthesize();
      this.#prepared.catch(() => (this.#prepared = undefined));
    }
    return this.#prepared;
  }

  async #synthesize(): Promise<Prepared> {
    const entries = this.#entries;
    const configBytes = await entries.readAll(this.#config, "config");
    const configDigest = sha256Bytes(configBytes);
    const blobs = new Map<string, RegistryBlob>([
      [configDigest, entries.blob(this.#config, configDigest)],
    ]);
    const layers = [];
    for (const layer of this.#layers) {
      const digest = await entries.digest(layer);
      blobs.set(digest, entries.blob(layer, digest));
      layers.push({ mediaType: DOCKER_LAYER_TAR, size: layer.size, digest });
    }
    this.#checkDiffIds(configBytes, layers.map((l) => l.digest));
    const manifest = {
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST_V2,
      config: { mediaType: DOCKER_CONFIG, size: configBytes.length, digest: configDigest },
      layers,
    };
    const bytes = new TextEncoder().encode(JSON.stringify(manifest));
    return {
      manifest: { mediaType: DOCKER_MANIFEST_V2, digest: sha256Bytes(bytes), bytes },
      blobs,
    };
  }

  /**
   * Uncompressed layer digests are the config's diff_ids; a mismatch means a
   * damaged archive that every client would reject later with less to go on.
   */
  #checkDiffIds(configBytes: Uint8Array, layerDigests: string[]): void {
    let diffIds: unknown;
    try {
      diffIds = JSON.parse(new TextDecoder().decode(configBytes))?.rootfs?.diff_ids;
    } catch (err) {
      throw new Error(
        `Cannot parse config "${this.#config.name}" in "${this.archivePath}": ${
          err instanceof Error ? err.message : String(err)
        }`,
      );
    }
    if (!Array.isArray(diffIds)) return;
    if (diffIds.length !== layerDigests.length) {
      throw new Error(
        `Archive "${this.archivePath}" is inconsistent: config "${this.#config.name}" lists ${diffIds.length} layers, manifest.json ${layerDigests.length}`,
      );
    }
    layerDigests.forEach((digest, i) => {
      if (diffIds[i] !== digest) {
        throw new Error(
          `Archive "${this.archivePath}" is inconsistent: layer "${
            this.#layers[i]?.name
          }" has digest "${digest}" but the config expects "${String(diffIds[i])}"`,
        );
      }
    });
  }
}
