/**
 * Image references in the short form `docker images` shows, so that
 * "docker.io/library/debian:bookworm-slim" (containerd annotations),
 * "debian:bookworm-slim" (RepoTags) and "debian" all find the same image.
 */

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** "docker.io/library/x" -> "x:latest"; "localhost:5000/a/b:t" stays as it is. */
export function familiarReference(reference: string): string {
  if (reference.includes("@")) return reference;
  let ref = reference;
  for (const host of ["docker.io/", "index.docker.io/", "registry-1.docker.io/"]) {
    if (ref.startsWith(host)) {
      ref = ref.slice(host.length);
      break;
    }
  }
  if (ref.startsWith("library/") && ref.indexOf("/", "library/".length) < 0) {
    ref = ref.slice("library/".length);
  }
  const lastSlash = ref.lastIndexOf("/");
  const lastColon = ref.lastIndexOf(":");
  return lastColon > lastSlash ? ref : `${ref}:latest`;
}

/** True for a full `sha256:<64 hex>` digest. */
export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}

/** Splits "repo:tag" (the tag defaults to "latest"); a port colon stays with the repo. */
export function splitReference(reference: string): { repo: string; tag: string } {
  const lastSlash = reference.lastIndexOf("/");
  const lastColon = reference.lastIndexOf(":");
  if (lastColon > lastSlash) {
    return { repo: reference.slice(0, lastColon), tag: reference.slice(lastColon + 1) };
  }
  return { repo: reference, tag: "latest" };
}
