/**
 * What the registry needs from one image, whatever stores it: the manifest a
 * tag points at, and lookups by digest for everything reachable from it.
 * Keeping lookups scoped to one image keeps a repository from serving blobs
 * of another image that happens to sit in the same archive.
 */

/** A manifest or index held in memory: they are small, and their exact bytes are their digest. */
export interface Manifest {
  readonly mediaType: string;
  /** `sha256:<hex>` of `bytes`. */
  readonly digest: string;
  readonly bytes: Uint8Array<ArrayBuffer>;
}

/** A blob streamed from storage on demand, never held whole. */
export interface RegistryBlob {
  readonly digest: string;
  readonly size: number;
  /** Streams bytes `start` (inclusive) to `end` (exclusive); the whole blob by default. */
  stream(start?: number, end?: number): ReadableStream<Uint8Array<ArrayBuffer>>;
  /**
   * The blob from `start` on, followed by whatever its storage holds after it,
   * as a stream `Deno.serve` sends natively (see `ArchiveFile.fileTail`): for
   * responses whose Content-Length ends the body. Undefined when the storage
   * cannot give one; optional for storage that never can.
   */
  fileTail?(start: number): Promise<ReadableStream<Uint8Array<ArrayBuffer>> | undefined>;
}

export interface ImageContent {
  /** The manifest (or index) a tag for this image resolves to. */
  rootManifest(): Promise<Manifest>;
  /** Any manifest reachable from the root, by digest; undefined when unknown. */
  manifest(digest: string): Promise<Manifest | undefined>;
  /** A config or layer blob reachable from the root, by digest; undefined when unknown. */
  blob(digest: string): Promise<RegistryBlob | undefined>;
}
