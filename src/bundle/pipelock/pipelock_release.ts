/**
 * The pipelock release the bundle runs, as pipelock publishes it: every
 * release has a `release-images.json` (schema `pipelock-release-images-v1`)
 * naming the manifest digest of each image built from the release commit.
 * The digests below are v3.5.0's, as pipelock's own Kubernetes image-upgrade
 * guide (luckyPipewrench/pipelock `docs/guides/kubernetes-image-upgrades.md`,
 * its v3.5.0 text) quotes them. `pipelock-init` is the image pipelock makes
 * for copying its binary out (`/pipelock`), which is what the bundle does.
 * `scripts/pin-pipelock.ts` checks a downloaded `release-images.json` and
 * rewrites this pin and the Dockerfile's from it.
 */

export interface ReleaseImages {
  schema: "pipelock-release-images-v1";
  tag: string;
  images: { name: string; repository: string; digest: string }[];
}

export const PIPELOCK_RELEASE: ReleaseImages = {
  schema: "pipelock-release-images-v1",
  tag: "v3.5.0",
  images: [
    {
      name: "pipelock",
      repository: "ghcr.io/luckypipewrench/pipelock",
      digest: "sha256:73e5d240f2ae02392c7de9c8858e9dee164396382c13e0ea95b4a497b2567965",
    },
    {
      name: "pipelock-init",
      repository: "ghcr.io/luckypipewrench/pipelock-init",
      digest: "sha256:0d54825d0ddf820edd9627cc08253ed838aebd43f7a62938505f6eae7955d714",
    },
  ],
};

/** `repository@digest` of a release image; a tag can be moved, a digest cannot. */
export function pinnedImage(release: ReleaseImages, name: string): string {
  const image = release.images.find((i) => i.name === name);
  if (!image) throw new Error(`pipelock release ${release.tag} names no image "${name}"`);
  return `${image.repository}@${image.digest}`;
}

/** The image the bundle copies `/pipelock` from. */
export const PIPELOCK_IMAGE = pinnedImage(PIPELOCK_RELEASE, "pipelock-init");

/** Names the image to copy pipelock from instead, where the pinned one cannot be pulled. */
export const PIPELOCK_IMAGE_ENV = "BOTTLE_PIPELOCK_IMAGE";

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const REPOSITORY = /^ghcr\.io\/luckypipewrench\/pipelock(-[a-z-]+)?$/;

/**
 * A `release-images.json` as pipelock publishes it, checked: its schema, a
 * `vX.Y.Z` tag, a 40-hex commit, and the two images bottle uses with
 * well-formed digests. Throws naming what is wrong.
 */
export function parseReleaseImages(text: string): ReleaseImages & { commit: string } {
  const fail = (why: string): never => {
    throw new Error(`Not a pipelock release-images.json: ${why}`);
  };
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return fail(`not JSON (${(err as Error).message})`);
  }
  if (data?.schema !== "pipelock-release-images-v1") {
    fail(`schema is ${JSON.stringify(data?.schema)}`);
  }
  if (typeof data.tag !== "string" || !/^v\d+\.\d+\.\d+$/.test(data.tag)) fail("tag is not vX.Y.Z");
  if (typeof data.commit !== "string" || !/^[0-9a-f]{40}$/.test(data.commit)) {
    fail("commit is not 40 hex digits");
  }
  if (!Array.isArray(data.images)) fail("images is not a list");
  const images = (data.images as Record<string, unknown>[]).map((i) => {
    if (typeof i?.name !== "string") fail("an image has no name");
    if (typeof i.repository !== "string" || !REPOSITORY.test(i.repository)) {
      fail(`image ${i.name}: repository ${JSON.stringify(i.repository)} is not pipelock's`);
    }
    if (typeof i.digest !== "string" || !DIGEST.test(i.digest)) {
      fail(`image ${i.name}: digest is not sha256:<64 hex>`);
    }
    return {
      name: i.name as string,
      repository: i.repository as string,
      digest: i.digest as string,
    };
  });
  for (const name of ["pipelock", "pipelock-init"]) {
    if (!images.some((i) => i.name === name)) fail(`no image named ${name}`);
  }
  return {
    schema: "pipelock-release-images-v1",
    tag: data.tag as string,
    commit: data.commit as string,
    images,
  };
}
