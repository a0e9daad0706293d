/**
 * A `docker save` archive opened in place: its tar headers are indexed and
 * its images exposed as registry content, whichever layout the engine wrote.
 * Docker < 25 writes the legacy layout (`manifest.json`, `<id>/layer.tar`,
 * `<id>.json`); Docker 25+ writes an OCI image layout (`oci-layout`,
 * `index.json`, `blobs/sha256/...`) plus `manifest.json`. Nothing is
 * extracted and no blob is ever held whole in memory.
 */
import { ArchiveEntries } from "./archive_entries.ts";
import { ArchiveFile } from "./archive_file.ts";
import type { ArchiveImage } from "./archive_image.ts";
import { familiarReference } from "./image_reference.ts";
import { LegacyImage, parseSaveManifest, type SaveManifestEntry } from "./legacy_image.ts";
import { descriptors, OciImage } from "./oci_image.ts";
import { indexTar, type TarEntry } from "./tar_index.ts";

export type { ArchiveImage } from "./archive_image.ts";

const CONTAINERD_NAME = "io.containerd.image.name";
const OCI_REF_NAME = "org.opencontainers.image.ref.name";

export class DockerArchive implements Disposable, AsyncDisposable {
  readonly path: string;
  readonly layout: "legacy" | "oci";
  readonly images: readonly ArchiveImage[];
  readonly #file: ArchiveFile;

  private constructor(
    file: ArchiveFile,
    layout: "legacy" | "oci",
    images: readonly ArchiveImage[],
  ) {
    this.path = file.path;
    this.#file = file;
    this.layout = layout;
    this.images = images;
  }

  /**
   * Indexes the archive at `path` and finds its images. Reads headers and the
   * small JSON files only; legacy layer digests are computed on first use
   * (`ArchiveImage.rootManifest()`).
   */
  static async open(path: string): Promise<DockerArchive> {
    const file = await ArchiveFile.open(path);
    try {
      const entries = new ArchiveEntries(file, await indexTar(file));
      const saveManifest = entries.entry("manifest.json");
      const saved = saveManifest
        ? parseSaveManifest(await entries.readJson(saveManifest, "manifest"), path)
        : [];
      const indexJson = entries.entry("index.json");
      if (indexJson && entries.entry("oci-layout")) {
        return new DockerArchive(file, "oci", await ociImages(entries, indexJson, saved));
      }
      if (saveManifest) {
        return new DockerArchive(file, "legacy", saved.map((s) => new LegacyImage(entries, s)));
      }
      throw new Error(
        `Cannot read docker archive "${path}": it has neither "manifest.json" nor "oci-layout" with "index.json" (is it a "docker save" archive?)`,
      );
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /**
   * The image named by `reference`: a tag in any common spelling
   * ("debian", "debian:bookworm-slim", "docker.io/library/debian:..."), an
   * image ID or manifest digest ("sha256:..."), or a bare OCI ref name.
   * Without a reference, the archive's only image.
   */
  image(reference?: string): ArchiveImage {
    if (reference === undefined || reference === "") {
      const [only, ...rest] = this.images;
      if (only && rest.length === 0) return only;
      throw new Error(
        `Archive "${this.path}" holds ${this.images.length} images: name one of ${this.#known()}`,
      );
    }
    const wanted = reference.startsWith("sha256:") ? reference : familiarReference(reference);
    const found =
      this.images.find((i) =>
        i.ids.includes(wanted) || i.names.includes(wanted) || i.names.includes(reference)
      ) ?? (/^[0-9a-f]{12,64}$/.test(reference)
        ? this.images.find((i) =>
          i.ids.some((id) => id.startsWith(`sha256:${reference}`))
        )
        : undefined);
    if (!found) {
      throw new Error(
        `Archive "${this.path}" has no image "${reference}": it holds ${this.#known()}`,
      );
    }
    return found;
  }

  /** Closes the archive file; blob streams still running fail. */
  close(): void {
    this.#file.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  #known(): string {
    if (this.images.length === 0) return "nothing";
    return this.images.map((i) => `"${i.names[0] ?? i.ids[0] ?? "?"}"`).join(", ");
  }
}

/**
 * One image per distinct `index.json` descriptor (Docker writes one
 * descriptor per tag, so descriptors of the same digest merge), named by
 * their annotations and by `manifest.json` RepoTags matched through config
 * digests. A `manifest.json` entry that matches no descriptor is still served,
 * the legacy way.
 */
async function ociImages(
  entries: ArchiveEntries,
  indexJson: TarEntry,
  saved: readonly SaveManifestEntry[],
): Promise<ArchiveImage[]> {
  const index = await entries.readJson(indexJson, "index");
  const roots = descriptors(
    typeof index === "object" && index !== null
      ? (index as Record<string, unknown>).manifests
      : undefined,
  );
  const byDigest = new Map<string, OciImage>();
  for (const root of roots) {
    let image = byDigest.get(root.digest);
    if (!image) {
      image = new OciImage(entries, root);
      byDigest.set(root.digest, image);
    }
    const names: string[] = [];
    const full = root.annotations?.[CONTAINERD_NAME];
    if (full) names.push(familiarReference(full));
    const refName = root.annotations?.[OCI_REF_NAME];
    if (refName) {
      // Docker writes the bare tag here, skopeo the whole "name:tag".
      names.push(
        refName.includes(":") || refName.includes("/") ? familiarReference(refName) : refName,
      );
    }
    image.addNames(names);
  }
  const images: ArchiveImage[] = [...byDigest.values()];
  // Walking every root now reads a few small manifests, and makes image IDs
  // (config digests) known for `image("sha256:...")`.
  const configs = new Map<OciImage, readonly string[]>();
  for (const image of byDigest.values()) configs.set(image, await image.configDigests());
  for (const entry of saved) {
    const configDigest = digestOfBlobPath(entry.config);
    let matched = false;
    for (const [image, digests] of configs) {
      if (configDigest && digests.includes(configDigest)) {
        image.addNames(entry.repoTags.map(familiarReference));
        matched = true;
      }
    }
    if (!matched) images.push(new LegacyImage(entries, entry));
  }
  return images;
}

/** "blobs/sha256/<hex>" -> "sha256:<hex>". */
function digestOfBlobPath(path: string): string | undefined {
  const m = /^(?:\.\/)?blobs\/([a-z0-9]+)\/([a-zA-Z0-9=_-]+)$/.exec(path);
  return m ? `${m[1]}:${m[2]}` : undefined;
}
