/**
 * The fake smolvm's `pack create` pull, done for real like smolvm's crane:
 * `GET /v2/`, the manifest (Docker v2 schema2, OCI manifest or index), the
 * config and every layer blob, each verified against its sha256 digest and
 * size; https first, plain http only for local and RFC 1918 registries.
 */
import { createHash } from "node:crypto";
import { Fail } from "./fake_errors.ts";

const MT = {
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
};

interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

interface ImageRef {
  host: string;
  repo: string;
  reference: string;
}

export function parseRef(ref: string): ImageRef {
  let rest = ref;
  let host = "registry-1.docker.io";
  const slash = rest.indexOf("/");
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      host = first;
      rest = rest.slice(slash + 1);
    }
  }
  let reference = "latest";
  const at = rest.indexOf("@");
  if (at >= 0) {
    reference = rest.slice(at + 1);
    rest = rest.slice(0, at);
    rest = rest.replace(/:[^/]*$/, "");
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon > rest.lastIndexOf("/")) {
      reference = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
    }
  }
  if (host === "registry-1.docker.io" && !rest.includes("/")) rest = `library/${rest}`;
  if (
    !/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(rest) || reference === ""
  ) {
    throw new Fail(`config operation failed: pack create: invalid image reference '${ref}'`);
  }
  return { host, repo: rest, reference };
}

/** crane's rule: plain http is allowed only for local and private registries. */
export function insecureAllowed(host: string): boolean {
  const h = host.startsWith("[") ? host.slice(1, host.indexOf("]")) : host.replace(/:\d+$/, "");
  if (h === "localhost" || h === "::1") return true;
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(h);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
}

async function registryFetch(url: string, accept?: string): Promise<Response> {
  return await fetch(url, {
    headers: accept ? { accept } : {},
    signal: AbortSignal.timeout(60_000),
  });
}

function digestOf(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

function checkDigestAlgo(digest: string): void {
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) {
    throw new Fail(`pull image: unsupported or malformed digest '${digest}'`);
  }
}

export async function pullImage(ref: string, platform: string | undefined) {
  const r = parseRef(ref);
  let base = `https://${r.host}`;
  try {
    const res = await registryFetch(`${base}/v2/`);
    await checkV2(res, ref);
  } catch (err) {
    if (err instanceof Fail || !insecureAllowed(r.host)) {
      if (err instanceof Fail) throw err;
      throw new Fail(`pull image: GET ${base}/v2/: ${(err as Error).message}`);
    }
    base = `http://${r.host}`;
    let res: Response;
    try {
      res = await registryFetch(`${base}/v2/`);
    } catch (err2) {
      throw new Fail(`pull image: GET ${base}/v2/: ${(err2 as Error).message}`);
    }
    await checkV2(res, ref);
  }

  const accept = [MT.ociIndex, MT.ociManifest, MT.dockerList, MT.dockerManifest].join(", ");
  const getManifest = async (reference: string, expected?: Descriptor) => {
    const url = `${base}/v2/${r.repo}/manifests/${reference}`;
    const res = await registryFetch(url, accept);
    const body = new Uint8Array(await res.arrayBuffer());
    if (!res.ok) {
      throw new Fail(
        `pull image: GET ${url}: ${res.status} ${res.statusText}: ${
          new TextDecoder().decode(body).slice(0, 200)
        }`,
      );
    }
    const digest = digestOf(body);
    const want = expected?.digest ?? (reference.startsWith("sha256:") ? reference : undefined);
    if (want !== undefined && want !== digest) {
      throw new Fail(`digest mismatch for manifest ${want}: got ${digest}`);
    }
    const header = res.headers.get("docker-content-digest");
    if (header && header.startsWith("sha256:") && header !== digest) {
      throw new Fail(
        `digest mismatch for manifest ${r.repo}:${reference}: Docker-Content-Digest ${header}, content ${digest}`,
      );
    }
    if (expected && expected.size !== body.length) {
      throw new Fail(
        `size mismatch for manifest ${digest}: want ${expected.size}, got ${body.length}`,
      );
    }
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(new TextDecoder().decode(body));
    } catch {
      throw new Fail(`pull image: manifest ${r.repo}:${reference} is not JSON`);
    }
    const mediaType = String(
      json.mediaType ?? res.headers.get("content-type")?.split(";")[0] ?? "",
    );
    if (json.schemaVersion !== 2) {
      throw new Fail(
        `pull image: unsupported manifest schemaVersion ${json.schemaVersion} (media type '${mediaType}')`,
      );
    }
    return { digest, mediaType, json, size: body.length };
  };

  const top = await getManifest(r.reference);
  let manifest = top;
  let chosenPlatform: string | null = null;
  if (
    top.mediaType === MT.ociIndex || top.mediaType === MT.dockerList ||
    Array.isArray(top.json.manifests)
  ) {
    const list = (top.json.manifests ?? []) as Descriptor[];
    if (list.length === 0) throw new Fail(`pull image: index ${top.digest} lists no manifests`);
    const [os, arch] = (platform ?? "linux/amd64").split("/");
    const pick = list.find((d) => d.platform?.os === os && d.platform?.architecture === arch) ??
      (platform ? undefined : list[0]);
    if (!pick) throw new Fail(`pull image: no manifest for platform ${platform} in ${ref}`);
    checkDigestAlgo(pick.digest);
    chosenPlatform = pick.platform ? `${pick.platform.os}/${pick.platform.architecture}` : null;
    manifest = await getManifest(pick.digest, pick);
  }
  if (manifest.mediaType !== MT.ociManifest && manifest.mediaType !== MT.dockerManifest) {
    throw new Fail(`pull image: unsupported manifest media type '${manifest.mediaType}'`);
  }
  const config = manifest.json.config as Descriptor | undefined;
  const layers = (manifest.json.layers ?? []) as Descriptor[];
  if (!config || !Array.isArray(layers)) {
    throw new Fail(`pull image: manifest ${manifest.digest} has no config or layers`);
  }

  const getBlob = async (d: Descriptor, what: string) => {
    checkDigestAlgo(d.digest);
    const url = `${base}/v2/${r.repo}/blobs/${d.digest}`;
    const res = await registryFetch(url);
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new Fail(`pull image: GET ${url}: ${res.status} ${res.statusText}`);
    }
    const hash = createHash("sha256");
    let size = 0;
    for await (const chunk of res.body) {
      hash.update(chunk);
      size += chunk.length;
    }
    const got = `sha256:${hash.digest("hex")}`;
    if (got !== d.digest) throw new Fail(`digest mismatch for ${what} ${d.digest}: got ${got}`);
    if (typeof d.size === "number" && d.size !== size) {
      throw new Fail(`size mismatch for ${what} ${d.digest}: want ${d.size}, got ${size}`);
    }
    return { digest: d.digest, size, mediaType: d.mediaType ?? null };
  };
  const configBlob = await getBlob(config, "config");
  const layerBlobs = [];
  for (const [i, l] of layers.entries()) {
    layerBlobs.push(await getBlob(l, `layer ${i + 1}/${layers.length}`));
  }
  return {
    registry: r.host,
    scheme: base.split(":")[0],
    repository: r.repo,
    reference: r.reference,
    index: manifest === top ? null : { digest: top.digest, mediaType: top.mediaType },
    manifest: { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.size },
    platform: chosenPlatform,
    config: configBlob,
    layers: layerBlobs,
  };
}

async function checkV2(res: Response, ref: string): Promise<void> {
  await res.body?.cancel();
  if (res.status === 200) return;
  if (res.status === 401) {
    throw new Fail(
      `pull image: registry for ${ref} requires authentication (the fake pulls anonymously)`,
    );
  }
  throw new Fail(`pull image: GET /v2/ for ${ref}: ${res.status} ${res.statusText}`);
}
