import assert from "node:assert/strict";
import { join } from "node:path";
import { attachLandingStore, importLandingStore } from "../../src/git/landing_store.ts";
import { run } from "../../src/proc/runner.ts";

const ENV = {
  GIT_AUTHOR_NAME: "T",
  GIT_AUTHOR_EMAIL: "t@e",
  GIT_COMMITTER_NAME: "T",
  GIT_COMMITTER_EMAIL: "t@e",
};

async function repoWithStore() {
  const dir = await Deno.makeTempDir({ prefix: "landing-store-" });
  const git = (args: string[], env: Record<string, string> = {}, stdin?: string) =>
    run(["git", `--git-dir=${dir}/repo.git`, ...args], {
      env: { ...ENV, ...env },
      ...(stdin !== undefined ? { stdin } : {}),
    });
  await run(["git", "init", "--quiet", "--bare", `${dir}/repo.git`]);
  const store = join(dir, "state", "bottles", "b-1", "landing-objects");
  await Deno.mkdir(join(dir, "state", "bottles", "b-1"), { recursive: true });
  await attachLandingStore(`${dir}/repo.git`, store);
  // What a landing writes: new objects into the store only, the ref in the repository.
  const inStore = {
    GIT_OBJECT_DIRECTORY: store,
    GIT_ALTERNATE_OBJECT_DIRECTORIES: `${dir}/repo.git/objects`,
  };
  const blob = (await git(["hash-object", "-w", "--stdin"], inStore, "landed\n")).stdout.trim();
  const tree = (await git(["mktree"], inStore, `100644 blob ${blob}\tf.txt\n`)).stdout.trim();
  const commit = (await git(["commit-tree", "-m", "landed", tree], inStore)).stdout.trim();
  await git(["update-ref", "refs/heads/bottle/b-1/main", commit]);
  return { dir, store, git, blob, commit };
}

Deno.test("landing store: borrowed while attached, the repository's own after import", async () => {
  const { dir, store, git, commit } = await repoWithStore();
  const alternates = `${dir}/repo.git/objects/info/alternates`;
  assert.match(await Deno.readTextFile(alternates), new RegExp(store));
  assert.equal((await git(["cat-file", "-t", commit])).stdout.trim(), "commit");
  await importLandingStore(`${dir}/repo.git`, store);
  assert.doesNotMatch(await Deno.readTextFile(alternates).catch(() => ""), /landing-objects/);
  await Deno.remove(store, { recursive: true });
  // Nothing borrowed any more: every object of the landed branch is the repository's own.
  assert.equal((await git(["fsck", "--connectivity-only", "--no-dangling"])).code, 0);
  assert.equal((await git(["show", "bottle/b-1/main:f.txt"])).stdout, "landed\n");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("landing store: an object whose content is not its id is not imported", async () => {
  const { dir, store, blob } = await repoWithStore();
  // A compromised bundle rewrites the loose object under the same name.
  const loose = join(store, blob.slice(0, 2), blob.slice(2));
  await Deno.chmod(loose, 0o644);
  const other = await run(["git", "hash-object", "--stdin"], { stdin: "tampered\n" });
  const tmp = await Deno.makeTempDir();
  await run(["git", "init", "--quiet", "--bare", tmp]);
  await run(["git", `--git-dir=${tmp}`, "hash-object", "-w", "--stdin"], { stdin: "tampered\n" });
  const id = other.stdout.trim();
  await Deno.copyFile(join(tmp, "objects", id.slice(0, 2), id.slice(2)), loose);
  await assert.rejects(
    importLandingStore(`${dir}/repo.git`, store),
    /do not match their ids|Could not copy/,
  );
  // The store stays borrowed (and the record with it): nothing is lost or silently replaced.
  assert.match(
    await Deno.readTextFile(`${dir}/repo.git/objects/info/alternates`),
    /landing-objects/,
  );
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("landing store: two bottles attach and detach side by side without losing a line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "landing-store-" });
  await run(["git", "init", "--quiet", "--bare", `${dir}/repo.git`]);
  const stores = Array.from({ length: 8 }, (_, i) => join(dir, `s${i}`, "landing-objects"));
  await Promise.all(stores.map((s) => attachLandingStore(`${dir}/repo.git`, s)));
  const file = `${dir}/repo.git/objects/info/alternates`;
  assert.deepEqual((await Deno.readTextFile(file)).trim().split("\n").sort(), [...stores].sort());
  await Promise.all(stores.slice(0, 4).map((s) => importLandingStore(`${dir}/repo.git`, s)));
  assert.deepEqual(
    (await Deno.readTextFile(file)).trim().split("\n").sort(),
    stores.slice(4).sort(),
  );
  await Deno.remove(dir, { recursive: true });
});
