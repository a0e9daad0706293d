import assert from "node:assert/strict";
import {
  parseReleaseImages,
  pinnedImage,
  PIPELOCK_IMAGE,
  PIPELOCK_RELEASE,
} from "../../src/bundle/pipelock/pipelock_release.ts";

const DOCKERFILE = new URL("../../images/bundle/Dockerfile", import.meta.url);

Deno.test("pipelock pin: the Dockerfile's default is the release data's pipelock-init digest", async () => {
  const arg = /^ARG PIPELOCK_IMAGE=(\S+)$/m.exec(await Deno.readTextFile(DOCKERFILE))?.[1];
  assert.equal(arg, PIPELOCK_IMAGE);
  assert.equal(
    PIPELOCK_IMAGE,
    "ghcr.io/luckypipewrench/pipelock-init@sha256:0d54825d0ddf820edd9627cc08253ed838aebd43f7a62938505f6eae7955d714",
  );
  assert.equal(
    pinnedImage(PIPELOCK_RELEASE, "pipelock"),
    "ghcr.io/luckypipewrench/pipelock@sha256:73e5d240f2ae02392c7de9c8858e9dee164396382c13e0ea95b4a497b2567965",
  );
});

const GOOD = {
  schema: "pipelock-release-images-v1",
  tag: "v3.5.0",
  commit: "0123456789abcdef0123456789abcdef01234567",
  images: [
    {
      name: "pipelock",
      repository: "ghcr.io/luckypipewrench/pipelock",
      digest: `sha256:${"a".repeat(64)}`,
    },
    {
      name: "pipelock-init",
      repository: "ghcr.io/luckypipewrench/pipelock-init",
      digest: `sha256:${"b".repeat(64)}`,
    },
    {
      name: "pipelock-license-service",
      repository: "ghcr.io/luckypipewrench/pipelock-license-service",
      digest: `sha256:${"c".repeat(64)}`,
    },
  ],
};

Deno.test("pipelock pin: release-images.json is read in pipelock's published shape", () => {
  const r = parseReleaseImages(JSON.stringify(GOOD));
  assert.equal(r.tag, "v3.5.0");
  assert.equal(
    pinnedImage(r, "pipelock-init"),
    `ghcr.io/luckypipewrench/pipelock-init@sha256:${"b".repeat(64)}`,
  );
});

Deno.test("pipelock pin: anything else is refused, naming what is wrong", () => {
  const bad: [unknown, RegExp][] = [
    [{ ...GOOD, schema: "v2" }, /schema/],
    [{ ...GOOD, tag: "latest" }, /tag/],
    [{ ...GOOD, commit: "abc" }, /commit/],
    [{ ...GOOD, images: GOOD.images.slice(0, 1) }, /no image named pipelock-init/],
    [
      { ...GOOD, images: [{ ...GOOD.images[0], digest: "sha256:short" }, GOOD.images[1]] },
      /digest/,
    ],
    [{
      ...GOOD,
      images: [{ ...GOOD.images[0], repository: "docker.io/evil/pipelock" }, GOOD.images[1]],
    }, /repository/],
  ];
  for (const [data, why] of bad) {
    assert.throws(() => parseReleaseImages(JSON.stringify(data)), why, JSON.stringify(data));
  }
  assert.throws(() => parseReleaseImages("{"), /not JSON/);
});
