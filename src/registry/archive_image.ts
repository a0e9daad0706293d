/**
 * One image found in a `docker save` archive, as the registry serves it and
 * as callers pick it out (by tag or by ID).
 */
import type { ImageContent } from "./image_content.ts";

export interface ArchiveImage extends ImageContent {
  /** Path of the archive, for messages. */
  readonly archivePath: string;
  /** Which layout it came from: legacy images get a synthesized schema2 manifest. */
  readonly layout: "legacy" | "oci";
  /** Tags in familiar form ("debian:bookworm-slim"), plus bare OCI ref names ("latest"). */
  readonly names: readonly string[];
  /**
   * Digests that identify it without hashing anything: the image ID (config
   * digest) and, for OCI layouts, the root manifest digest.
   */
  readonly ids: readonly string[];
}
