/**
 * Media types the registry serves. Legacy `docker save` archives carry no
 * media types at all, so the synthesized manifest uses Docker's schema2 names;
 * OCI-layout archives name their own and are served as they are.
 */

export const DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json";
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
/** Uncompressed layer: what `docker save` stores, so no recompression is needed. */
export const DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

/** Media types that describe a list of manifests rather than one image. */
export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([DOCKER_MANIFEST_LIST, OCI_INDEX]);

/** Every manifest media type the registry knows how to serve. */
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([
  DOCKER_MANIFEST_V2,
  DOCKER_MANIFEST_LIST,
  OCI_MANIFEST,
  OCI_INDEX,
]);
