/**
 * The registry on a real socket, for clients that cannot take an archive
 * (`smolvm pack create --image` pulls through crane). Bound to loopback by
 * default: plain HTTP on 127.0.0.0/8 is what docker, crane and skopeo accept
 * without TLS, and nothing off the host should reach a bottle's image. Owns
 * the archives it opened: disposing it stops the server at once (cutting off
 * downloads still running) and closes them.
 */
import { DockerArchive } from "./docker_archive.ts";
import type { ImageContent } from "./image_content.ts";
import { createRegistryHandler, isServableReference } from "./registry_handler.ts";

export interface ArchiveSpec {
  /** A `docker save` archive (legacy or OCI layout), uncompressed. */
  readonly path: string;
  /**
   * Which references the archive answers to: "repo:tag" served -> the image
   * in the archive, named as `DockerArchive.image()` takes it (a RepoTag, an
   * image ID, or "" for the archive's only image). Default: every image under
   * its own tags ("debian:bookworm-slim" -> "debian:bookworm-slim"), leaving
   * out tags that name another registry ("localhost:5000/x:1").
   */
  readonly refs?: Readonly<Record<string, string>>;
}

export interface ServeRegistryOptions {
  /** Archives to open and serve; they are closed with the registry. */
  readonly archives?: readonly ArchiveSpec[];
  /** Content the caller owns and closes itself, keyed by "repo:tag". */
  readonly images?: Readonly<Record<string, ImageContent>>;
  /** Default "127.0.0.1". */
  readonly hostname?: string;
  /** Default 0: a free port, see `address`. */
  readonly port?: number;
  /** Content failures behind a 500 (a damaged archive); default: ignored. */
  readonly onError?: (error: unknown, request: Request) => void;
}

export interface RunningRegistry extends AsyncDisposable {
  /** "127.0.0.1:PORT": the registry part of a reference. */
  readonly address: string;
  readonly hostname: string;
  readonly port: number;
  /** The opened archives, in the order given. */
  readonly archives: readonly DockerArchive[];
  /** "127.0.0.1:PORT/repo:tag", a reference a client pulls. */
  ref(repo: string, tag: string): string;
  /** Stops serving and closes the archives; what `await using` calls. */
  close(): Promise<void>;
}

/**
 * Opens the archives, computes every served manifest (legacy layer digests
 * are hashed here, so a damaged archive fails now, not in the client), then
 * listens.
 */
export async function serveRegistry(options: ServeRegistryOptions): Promise<RunningRegistry> {
  const archives: DockerArchive[] = [];
  const closeArchives = () => {
    for (const a of archives) a.close();
  };
  try {
    const images = new Map<string, ImageContent>(Object.entries(options.images ?? {}));
    for (const spec of options.archives ?? []) {
      const archive = await DockerArchive.open(spec.path);
      archives.push(archive);
      const refs = spec.refs ?? Object.fromEntries(
        archive.images.flatMap((image) =>
          image.names.filter((n) => n.includes(":") && isServableReference(n)).map((n) => [n, n])
        ),
      );
      for (const [served, inArchive] of Object.entries(refs)) {
        if (images.has(served)) {
          throw new Error(`Registry reference "${served}" is given twice`);
        }
        images.set(served, archive.image(inArchive));
      }
    }
    if (images.size === 0) throw new Error("Cannot serve a registry with no images");
    // No native file tails (`nativeFileBodies`): Deno.serve also speaks h2c
    // here, and over HTTP/2 it sends a tail past Content-Length to the end of
    // the archive, whatever follows the blob.
    const handler = createRegistryHandler(images, {
      ...(options.onError ? { onError: options.onError } : {}),
    });
    for (const image of new Set(images.values())) await image.rootManifest();
    return listen(handler, archives, options, closeArchives);
  } catch (err) {
    closeArchives();
    throw err;
  }
}

function listen(
  handler: (request: Request) => Promise<Response>,
  archives: DockerArchive[],
  options: ServeRegistryOptions,
  closeArchives: () => void,
): RunningRegistry {
  const hostname = options.hostname ?? "127.0.0.1";
  // Aborting is Deno's forceful stop: it also ends downloads a stalled client
  // keeps open, which `shutdown()` would wait for without end.
  const abort = new AbortController();
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve(
      {
        hostname,
        port: options.port ?? 0,
        signal: abort.signal,
        // Compression would drop Content-Length, which pulling clients expect.
        automaticCompression: false,
        onListen: () => {},
      },
      handler,
    );
  } catch (err) {
    throw new Error(
      `Cannot listen on "${hostname}:${options.port ?? 0}": ${
        err instanceof Error ? err.message : String(err)
      }`,
      { cause: err },
    );
  }
  const port = server.addr.port;
  const address = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      abort.abort();
      try {
        await server.finished;
      } finally {
        closeArchives();
      }
    })();
  return {
    address,
    hostname,
    port,
    archives,
    ref: (repo, tag) => `${address}/${repo}:${tag}`,
    close,
    [Symbol.asyncDispose]: close,
  };
}
