/**
 * The read-only part of the OCI distribution API that pulls need (docker,
 * skopeo, containerd, crane), as a plain `(req: Request) => Promise<Response>`
 * so it runs in tests without a socket. Which repository and tag serve which
 * image is fixed when the handler is made; digests resolve only within the
 * images of the repository asked for, as on a real registry.
 */
import type { ImageContent, Manifest } from "./image_content.ts";
import { splitReference } from "./image_reference.ts";
import { INDEX_MEDIA_TYPES } from "./media_types.ts";

export type RegistryHandler = (request: Request) => Promise<Response>;

export interface RegistryHandlerOptions {
  /** Called with failures of the content behind a 500 (a damaged or closed archive). */
  onError?: (error: unknown, request: Request) => void;
  /**
   * Send large blobs as file tails (`RegistryBlob.fileTail`) that `Deno.serve`
   * pipes natively and cuts at Content-Length: about half the CPU per byte of
   * a JS stream, and up to twice its throughput on loopback. Set it only where the responses go straight to `Deno.serve`
   * (without automatic compression) and no HTTP/2 client can connect: read
   * any other way, such a body runs on past the blob. Used only for requests
   * with a Host header, since only HTTP/1.x stops at Content-Length and an
   * HTTP/1.1 request must carry Host; but an HTTP/2 client may send Host too,
   * and `Deno.serve` (which takes h2c on any port) then sends it the rest of
   * the archive file (Deno 2.9.6), so `serveRegistry` leaves this off.
   */
  nativeFileBodies?: boolean;
}

type ErrorCode =
  | "BLOB_UNKNOWN"
  | "DIGEST_INVALID"
  | "MANIFEST_UNKNOWN"
  | "NAME_INVALID"
  | "NAME_UNKNOWN"
  | "UNSUPPORTED"
  | "UNKNOWN";

interface Repository {
  tags: Map<string, ImageContent>;
  /** Each image once, in the order tags named them: where digests are looked up. */
  images: ImageContent[];
}

/** Repository names per the distribution spec: lowercase components separated by "/". */
const REPO_NAME =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const ROUTE = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/;
const TAGS_ROUTE = /^\/v2\/(.+)\/tags\/list$/;

const API_VERSION = { "Docker-Distribution-API-Version": "registry/2.0" };

/** Smaller bodies fit one chunk of a JS stream; a file tail would only add an open. */
const NATIVE_BODY_MIN_BYTES = 1 << 20;

/** True when `reference` ("repo:tag") can be served: a lowercase repo path without a registry host. */
export function isServableReference(reference: string): boolean {
  const { repo, tag } = splitReference(reference);
  return REPO_NAME.test(repo) && TAG.test(tag);
}

/**
 * Makes the handler. `images` maps "repo:tag" (e.g. "bottle/agent:abc123")
 * to the image it serves; one image may sit under several tags.
 */
export function createRegistryHandler(
  images: ReadonlyMap<string, ImageContent> | Readonly<Record<string, ImageContent>>,
  options: RegistryHandlerOptions = {},
): RegistryHandler {
  const repos = new Map<string, Repository>();
  const pairs = images instanceof Map ? [...images] : Object.entries(images);
  for (const [reference, image] of pairs) {
    const { repo, tag } = splitReference(reference);
    if (!isServableReference(reference)) {
      throw new Error(
        `Invalid registry reference "${reference}": expected "repo:tag" with a lowercase repo and a tag of [A-Za-z0-9_.-]`,
      );
    }
    let entry = repos.get(repo);
    if (!entry) {
      entry = { tags: new Map(), images: [] };
      repos.set(repo, entry);
    }
    entry.tags.set(tag, image);
    if (!entry.images.includes(image)) entry.images.push(image);
  }

  return async (request) => {
    try {
      return await route(request, repos, options.nativeFileBodies ?? false);
    } catch (err) {
      options.onError?.(err, request);
      return errorResponse(
        500,
        "UNKNOWN",
        "internal error",
        err instanceof Error ? err.message : String(err),
      );
    }
  };
}

async function route(
  request: Request,
  repos: Map<string, Repository>,
  nativeFileBodies: boolean,
): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return errorResponse(405, "UNSUPPORTED", "this registry is read-only", {
      method: request.method,
    }, { Allow: "GET, HEAD" });
  }
  const head = request.method === "HEAD";
  let path: string;
  try {
    path = decodeURIComponent(new URL(request.url).pathname);
  } catch {
    return errorResponse(400, "NAME_INVALID", "malformed request path");
  }
  if (path === "/v2" || path === "/v2/") {
    return new Response(head ? null : "{}", {
      headers: { ...API_VERSION, "Content-Type": "application/json", "Content-Length": "2" },
    });
  }
  if (path === "/v2/_catalog") {
    return json({ repositories: [...repos.keys()].sort() }, head);
  }

  const tagsRoute = TAGS_ROUTE.exec(path);
  if (tagsRoute) {
    const name = tagsRoute[1] ?? "";
    const repo = repos.get(name);
    if (!repo) return nameUnknown(name);
    return json({ name, tags: [...repo.tags.keys()].sort() }, head);
  }

  const match = ROUTE.exec(path);
  if (!match) return errorResponse(404, "UNSUPPORTED", "no such endpoint", { path });
  const [, name = "", kind, reference = ""] = match;
  if (!REPO_NAME.test(name)) {
    return errorResponse(400, "NAME_INVALID", "invalid repository name", { name });
  }
  const repo = repos.get(name);
  if (!repo) return nameUnknown(name);

  if (kind === "manifests") {
    const manifest = await findManifest(repo, reference);
    if (manifest === "invalid") return digestInvalid(reference);
    if (!manifest) {
      return errorResponse(404, "MANIFEST_UNKNOWN", "manifest unknown", { name, reference });
    }
    const refused = refusedByAccept(request, manifest);
    if (refused) return refused;
    return new Response(head ? null : manifest.bytes, {
      headers: {
        ...API_VERSION,
        "Content-Type": manifest.mediaType,
        "Content-Length": String(manifest.bytes.length),
        "Docker-Content-Digest": manifest.digest,
        "ETag": `"${manifest.digest}"`,
      },
    });
  }
  return await serveBlob(request, repo, name, reference, head, nativeFileBodies);
}

async function findManifest(
  repo: Repository,
  reference: string,
): Promise<Manifest | undefined | "invalid"> {
  if (!reference.includes(":")) {
    return TAG.test(reference) ? await repo.tags.get(reference)?.rootManifest() : undefined;
  }
  if (!DIGEST.test(reference)) return "invalid";
  for (const image of repo.images) {
    const found = await image.manifest(reference);
    if (found) return found;
  }
  return undefined;
}

async function serveBlob(
  request: Request,
  repo: Repository,
  name: string,
  digest: string,
  head: boolean,
  nativeFileBodies: boolean,
): Promise<Response> {
  if (!DIGEST.test(digest)) return digestInvalid(digest);
  const native = nativeFileBodies && request.headers.has("Host");
  for (const image of repo.images) {
    const blob = await image.blob(digest);
    if (!blob) continue;
    return await rangedBody(request, blob.size, digest, head, async (start, end) => {
      if (native && end - start >= NATIVE_BODY_MIN_BYTES && blob.fileTail) {
        const tail = await blob.fileTail(start);
        if (tail) return tail;
      }
      return blob.stream(start, end);
    });
  }
  // Manifests are blobs too, and some clients fetch them that way.
  for (const image of repo.images) {
    const manifest = await image.manifest(digest);
    if (manifest) {
      const bytes = manifest.bytes;
      return rangedBody(
        request,
        bytes.length,
        digest,
        head,
        (s, e) => new Blob([bytes.slice(s, e)]).stream(),
      );
    }
  }
  return errorResponse(404, "BLOB_UNKNOWN", "blob unknown to registry", { name, digest });
}

/**
 * A blob body, or the single byte range asked for (resumed downloads). The
 * body `open` gives may run past `end`: Content-Length is always set.
 */
async function rangedBody(
  request: Request,
  size: number,
  digest: string,
  head: boolean,
  open: (
    start: number,
    end: number,
  ) => ReadableStream<Uint8Array> | Promise<ReadableStream<Uint8Array>>,
): Promise<Response> {
  const headers: Record<string, string> = {
    ...API_VERSION,
    "Content-Type": "application/octet-stream",
    "Docker-Content-Digest": digest,
    "ETag": `"${digest}"`,
    "Accept-Ranges": "bytes",
  };
  const range = parseRange(request.headers.get("Range"), size);
  if (range === "unsatisfiable") {
    return new Response(null, {
      status: 416,
      headers: { ...headers, "Content-Range": `bytes */${size}` },
    });
  }
  const [start, end] = range ?? [0, size];
  headers["Content-Length"] = String(end - start);
  if (range) headers["Content-Range"] = `bytes ${start}-${end - 1}/${size}`;
  return new Response(head ? null : await open(start, end), {
    status: range ? 206 : 200,
    headers,
  });
}

/**
 * "bytes=a-b", "bytes=a-" or "bytes=-n" as [start, end) in bytes; undefined
 * (whole body) for no header, multiple ranges or anything unparsable.
 */
function parseRange(
  header: string | null,
  size: number,
): [number, number] | "unsatisfiable" | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) return "unsatisfiable";
    // An empty blob has no last byte for a Content-Range to name: sent whole, as 200.
    if (size === 0) return undefined;
    return [Math.max(0, size - suffix), size];
  }
  const start = Number(m[1]);
  const last = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || last < start) return "unsatisfiable";
  return [start, last + 1];
}

/**
 * Like distribution: a client that lists media types it accepts and not
 * this one gets MANIFEST_UNKNOWN, since no other rendition exists. No Accept,
 * or a wildcard, takes the manifest as stored.
 */
function refusedByAccept(request: Request, manifest: Manifest): Response | undefined {
  const header = request.headers.get("Accept");
  if (!header) return undefined;
  const accepted = header.split(",").map((part) => part.split(";")[0]?.trim().toLowerCase() ?? "")
    .filter((t) => t !== "");
  if (accepted.length === 0) return undefined;
  const type = manifest.mediaType.toLowerCase();
  const major = type.split("/")[0];
  if (accepted.some((a) => a === type || a === "*/*" || a === `${major}/*`)) return undefined;
  const kind = INDEX_MEDIA_TYPES.has(manifest.mediaType) ? "index" : "manifest";
  return errorResponse(
    404,
    "MANIFEST_UNKNOWN",
    `${kind} of media type "${manifest.mediaType}" found, but the Accept header does not allow it`,
    { accept: header, digest: manifest.digest },
  );
}

function json(body: unknown, head: boolean): Response {
  const bytes = new TextEncoder().encode(JSON.stringify(body));
  return new Response(head ? null : bytes, {
    headers: {
      ...API_VERSION,
      "Content-Type": "application/json",
      "Content-Length": String(bytes.length),
    },
  });
}

function nameUnknown(name: string): Response {
  return errorResponse(404, "NAME_UNKNOWN", "repository name not known to registry", { name });
}

function digestInvalid(digest: string): Response {
  return errorResponse(400, "DIGEST_INVALID", "provided digest is malformed", { digest });
}

/** An error in the distribution spec's JSON shape. */
function errorResponse(
  status: number,
  code: ErrorCode,
  message: string,
  detail?: unknown,
  extraHeaders: Record<string, string> = {},
): Response {
  const body = JSON.stringify({
    errors: [{ code, message, ...(detail === undefined ? {} : { detail }) }],
  });
  return new Response(body, {
    status,
    headers: { ...API_VERSION, ...extraHeaders, "Content-Type": "application/json" },
  });
}
