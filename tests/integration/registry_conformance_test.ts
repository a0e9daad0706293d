/**
 * The in-process registry against real clients: a small multi-layer image is
 * built in the local engine, saved (legacy layout on Docker < 25; an OCI
 * layout archive shaped like Docker 25+ is made from it with skopeo), served,
 * then pulled back by `docker pull` and `skopeo copy`, and the pulled image
 * must be the same image: same ID or config, same layer digests.
 *
 * Needs a reachable Docker engine and skopeo: without them these tests fail,
 * they never skip.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { run } from "../../src/proc/runner.ts";
import { DockerArchive } from "../../src/registry/docker_archive.ts";
import { serveRegistry } from "../../src/registry/registry_server.ts";

const TIMEOUT_MS = 180_000;
/** Every image these tests build carries it, so a killed run's leftovers can be found. */
const TEST_LABEL = "bottle.test=registry-conformance";
const WRONG_DIGEST = `sha256:${"0".repeat(64)}`;

async function sh(argv: string[]): Promise<string> {
  return (await run(argv, { timeoutMs: TIMEOUT_MS })).stdout.trim();
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(path));
}

interface ImageFacts {
  id: string;
  diffIds: string[];
}

async function inspectImage(ref: string): Promise<ImageFacts> {
  const [info] = JSON.parse(await sh(["docker", "image", "inspect", ref]));
  return { id: info.Id, diffIds: info.RootFS.Layers };
}

/**
 * A fresh image FROM scratch with four layers, one of them a byte-identical
 * repeat (which `docker save` stores as a symlink), removed on dispose.
 */
async function buildTestImage(stack: AsyncDisposableStack, name: string): Promise<ImageFacts> {
  // Fails the test (never skips it) when no engine answers.
  await sh(["docker", "version", "--format", "{{.Server.Version}}"]);
  const dir = await Deno.makeTempDir({ prefix: "bottle-registry-build-" });
  stack.defer(() => Deno.remove(dir, { recursive: true }));
  const random = new Uint8Array(2 << 20);
  for (let i = 0; i < random.length; i += 65536) {
    crypto.getRandomValues(random.subarray(i, i + 65536));
  }
  await Deno.writeFile(`${dir}/random.bin`, random);
  await Deno.writeTextFile(`${dir}/id.txt`, `${name}\n`);
  await Deno.writeTextFile(`${dir}/same.txt`, "identical layer content\n");
  await Deno.mkdir(`${dir}/tree/sub`, { recursive: true });
  await Deno.writeTextFile(`${dir}/tree/sub/file.txt`, "nested\n");
  await Deno.writeTextFile(
    `${dir}/Dockerfile`,
    [
      "FROM scratch",
      "COPY id.txt /id.txt",
      "COPY random.bin /data/random.bin",
      "COPY same.txt /same.txt",
      "COPY tree /tree",
      "COPY same.txt /same.txt",
      'CMD ["/nothing"]',
      "",
    ].join("\n"),
  );
  stack.defer(async () => {
    await run(["docker", "image", "rm", "-f", name], { check: false });
  });
  await sh(["docker", "build", "-q", "--label", TEST_LABEL, "-t", name, dir]);
  const facts = await inspectImage(name);
  assert.equal(facts.diffIds.length, 5);
  assert.equal(facts.diffIds[2], facts.diffIds[4], "two identical layers");
  return facts;
}

async function tempDir(stack: AsyncDisposableStack, prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  stack.defer(() => Deno.remove(dir, { recursive: true }));
  return dir;
}

/** Pulls `ref` with the engine and returns what it stored; the pulled tag is removed on dispose. */
async function dockerPull(stack: AsyncDisposableStack, ref: string): Promise<ImageFacts> {
  stack.defer(async () => {
    await run(["docker", "image", "rm", ref], { check: false });
  });
  await sh(["docker", "pull", "-q", ref]);
  return await inspectImage(ref);
}

/** `skopeo copy` from the registry into a `dir:` layout; returns the manifest and its blobs' digests. */
async function skopeoToDir(
  stack: AsyncDisposableStack,
  ref: string,
): Promise<{ manifestDigest: string; manifest: Record<string, unknown>; blobDigests: string[] }> {
  const dest = await tempDir(stack, "bottle-registry-skopeo-dir-");
  await sh([
    "skopeo",
    "copy",
    "--quiet",
    "--src-tls-verify=false",
    `docker://${ref}`,
    `dir:${dest}`,
  ]);
  const manifest = await readJson(`${dest}/manifest.json`);
  const blobDigests: string[] = [];
  for await (const entry of Deno.readDir(dest)) {
    if (/^[0-9a-f]{64}$/.test(entry.name)) {
      const digest = await sha256File(`${dest}/${entry.name}`);
      assert.equal(digest, `sha256:${entry.name}`, "blob content matches its name");
      blobDigests.push(digest);
    }
  }
  return { manifestDigest: await sha256File(`${dest}/manifest.json`), manifest, blobDigests };
}

/** `skopeo copy` into an `oci:` layout, keeping layers uncompressed so digests compare. */
async function skopeoToOci(
  stack: AsyncDisposableStack,
  ref: string,
): Promise<{ config: string; layers: string[]; diffIds: string[] }> {
  const dest = await tempDir(stack, "bottle-registry-skopeo-oci-");
  await sh([
    "skopeo",
    "copy",
    "--quiet",
    "--src-tls-verify=false",
    "--dest-oci-accept-uncompressed-layers",
    `docker://${ref}`,
    `oci:${dest}:pulled`,
  ]);
  const index = await readJson(`${dest}/index.json`);
  const [descriptor] = index.manifests as { digest: string }[];
  const manifest = await readJson(`${dest}/blobs/sha256/${descriptor!.digest.slice(7)}`);
  const config = (manifest.config as { digest: string }).digest;
  const configJson = await readJson(`${dest}/blobs/sha256/${config.slice(7)}`);
  return {
    config,
    layers: (manifest.layers as { digest: string }[]).map((l) => l.digest),
    diffIds: (configJson.rootfs as { diff_ids: string[] }).diff_ids,
  };
}

/** Wrong digests and tags answer 404 with the distribution error codes. */
async function assertUnknowns(address: string, repo: string): Promise<void> {
  const cases: [string, string][] = [
    [`/v2/${repo}/manifests/${WRONG_DIGEST}`, "MANIFEST_UNKNOWN"],
    [`/v2/${repo}/blobs/${WRONG_DIGEST}`, "BLOB_UNKNOWN"],
    [`/v2/${repo}/manifests/no-such-tag`, "MANIFEST_UNKNOWN"],
    [`/v2/not/served/manifests/latest`, "NAME_UNKNOWN"],
  ];
  for (const [path, code] of cases) {
    const res = await fetch(`http://${address}${path}`);
    assert.equal(res.status, 404, path);
    assert.equal((await res.json()).errors[0].code, code, path);
  }
}

Deno.test("registry conformance: the engine's docker save archive pulls back as the same image", async () => {
  await using stack = new AsyncDisposableStack();
  const run_id = crypto.randomUUID().slice(0, 8);
  const local = `bottle-registry-test-save:${run_id}`;
  const original = await buildTestImage(stack, local);
  const engineMajor = parseInt(await sh(["docker", "version", "--format", "{{.Server.Version}}"]));

  const work = await tempDir(stack, "bottle-registry-save-");
  const archivePath = `${work}/image.tar`;
  await sh(["docker", "save", "-o", archivePath, local]);
  {
    await using archive = await DockerArchive.open(archivePath);
    assert.equal(archive.layout, engineMajor >= 25 ? "oci" : "legacy", `Docker ${engineMajor}`);
  }
  const legacy = engineMajor < 25;
  if (legacy) {
    assert.match(
      await sh(["tar", "-tvf", archivePath]),
      /layer\.tar -> /,
      "repeated layer is a symlink",
    );
  }

  const repo = `bottle/agent-${run_id}`;
  const reg = stack.use(
    await serveRegistry({
      archives: [{ path: archivePath, refs: { [`${repo}:v1`]: local } }],
    }),
  );
  const ref = reg.ref(repo, "v1");
  const served = await (await fetch(`http://${reg.address}/v2/${repo}/manifests/v1`)).json();

  // docker pull: same image ID (config digest) and the same layers. (The
  // containerd image store of Docker 25+ names images by manifest instead.)
  const pulled = await dockerPull(stack, ref);
  if (legacy) assert.equal(pulled.id, original.id);
  assert.deepEqual(pulled.diffIds, original.diffIds);
  const byDigest = await dockerPull(
    stack,
    `${reg.address}/${repo}@${await manifestDigest(reg.address, repo, "v1")}`,
  );
  assert.equal(byDigest.id, pulled.id);

  // skopeo into dir: the manifest we served, byte for byte, and every blob.
  const dir = await skopeoToDir(stack, ref);
  assert.equal(dir.manifestDigest, await manifestDigest(reg.address, repo, "v1"));
  assert.deepEqual(
    new Set(dir.blobDigests),
    new Set([(served.config as { digest: string }).digest, ...original.diffIds]),
  );
  if (legacy) assert.equal((served.config as { digest: string }).digest, original.id);
  assert.deepEqual(
    (served.layers as { digest: string }[]).map((l) => l.digest),
    original.diffIds,
  );

  // skopeo into oci: manifest and config converted to OCI, layers untouched.
  const oci = await skopeoToOci(stack, ref);
  assert.deepEqual(oci.layers, original.diffIds);
  assert.deepEqual(oci.diffIds, original.diffIds);

  await assertUnknowns(reg.address, repo);
  await assert.rejects(
    run(["docker", "pull", `${reg.address}/${repo}@${WRONG_DIGEST}`], { timeoutMs: TIMEOUT_MS }),
    /manifest unknown|not found/i,
  );
});

Deno.test("registry conformance: a Docker 25+ OCI-layout archive pulls back with the same layers", async () => {
  await using stack = new AsyncDisposableStack();
  const run_id = crypto.randomUUID().slice(0, 8);
  const local = `bottle-registry-test-oci:${run_id}`;
  const original = await buildTestImage(stack, local);

  const layout = await tempDir(stack, "bottle-registry-oci-layout-");
  await sh([
    "skopeo",
    "copy",
    "--quiet",
    "--dest-oci-accept-uncompressed-layers",
    `docker-daemon:${local}`,
    `oci:${layout}`,
  ]);
  const { configDigest, manifestDigest: ociManifestDigest } = await dockerStyleLayout(
    layout,
    local,
  );
  const work = await tempDir(stack, "bottle-registry-oci-");
  const archivePath = `${work}/image.tar`;
  await sh([
    "tar",
    "-C",
    layout,
    "-cf",
    archivePath,
    "oci-layout",
    "index.json",
    "manifest.json",
    "blobs",
  ]);
  {
    await using archive = await DockerArchive.open(archivePath);
    assert.equal(archive.layout, "oci");
    assert.equal(archive.image(local), archive.image(`docker.io/library/${local}`));
  }

  const repo = `bottle/oci-${run_id}`;
  const reg = stack.use(
    await serveRegistry({
      archives: [{ path: archivePath, refs: { [`${repo}:v1`]: local } }],
    }),
  );
  const ref = reg.ref(repo, "v1");
  assert.equal(
    await manifestDigest(reg.address, repo, "v1"),
    ociManifestDigest,
    "served as stored",
  );

  // docker pull: the image ID is the OCI config's digest; the layers are the original ones.
  const pulled = await dockerPull(stack, ref);
  assert.equal(pulled.id, configDigest);
  assert.deepEqual(pulled.diffIds, original.diffIds);

  const dir = await skopeoToDir(stack, ref);
  assert.equal(dir.manifestDigest, ociManifestDigest);
  assert.deepEqual(new Set(dir.blobDigests), new Set([configDigest, ...original.diffIds]));

  // Already OCI: nothing is converted, so even the config digest stays.
  const oci = await skopeoToOci(stack, ref);
  assert.equal(oci.config, configDigest);
  assert.deepEqual(oci.layers, original.diffIds);
  assert.deepEqual(oci.diffIds, original.diffIds);

  await assertUnknowns(reg.address, repo);
  await assert.rejects(
    run([
      "skopeo",
      "inspect",
      "--tls-verify=false",
      `docker://${reg.address}/${repo}@${WRONG_DIGEST}`,
    ], {
      timeoutMs: TIMEOUT_MS,
    }),
    /manifest unknown/i,
  );
});

async function manifestDigest(address: string, repo: string, tag: string): Promise<string> {
  const res = await fetch(`http://${address}/v2/${repo}/manifests/${tag}`, { method: "HEAD" });
  assert.equal(res.status, 200);
  return res.headers.get("Docker-Content-Digest") ?? "";
}

/**
 * Rewrites a skopeo OCI layout the way Docker 25+ saves one: index.json
 * descriptors annotated with the containerd name and the bare tag, and a
 * manifest.json whose paths point into blobs/.
 */
async function dockerStyleLayout(
  layout: string,
  name: string,
): Promise<{ configDigest: string; manifestDigest: string }> {
  const index = await readJson(`${layout}/index.json`);
  const [descriptor] = index.manifests as Record<string, unknown>[];
  const digest = String(descriptor!.digest);
  const manifest = await readJson(`${layout}/blobs/sha256/${digest.slice(7)}`);
  const config = String((manifest.config as { digest: string }).digest);
  const tag = name.slice(name.lastIndexOf(":") + 1);
  index.mediaType = "application/vnd.oci.image.index.v1+json";
  index.manifests = [{
    ...descriptor,
    annotations: {
      "io.containerd.image.name": `docker.io/library/${name}`,
      "org.opencontainers.image.ref.name": tag,
    },
  }];
  await Deno.writeTextFile(`${layout}/index.json`, JSON.stringify(index));
  await Deno.writeTextFile(
    `${layout}/manifest.json`,
    JSON.stringify([{
      Config: `blobs/sha256/${config.slice(7)}`,
      RepoTags: [name],
      Layers: (manifest.layers as { digest: string }[]).map((l) =>
        `blobs/sha256/${l.digest.slice(7)}`
      ),
    }]),
  );
  return { configDigest: config, manifestDigest: digest };
}
