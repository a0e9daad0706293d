/**
 * Where a bottle's landed objects live while it runs (mount transport): a
 * directory of the bottle's own (in its state dir) that the bundle writes,
 * borrowed by the host repository through one line of its
 * `objects/info/alternates`, so a landed branch is usable on the host at
 * once while the host repository's own objects stay out of the bundle's
 * reach. At the end the host's own git copies them into the repository,
 * recomputing every object id from its content (`index-pack --strict`), and
 * the line goes. The repository's own objects come first in every lookup:
 * nothing the bundle writes there can stand in for one of them.
 */
import { join } from "node:path";
import { run, spawn } from "../proc/runner.ts";
import { HOST_GIT_ENV } from "./host_repo.ts";
import { UserError } from "../errors.ts";
import { missingObjects } from "./missing_objects.ts";

function alternatesFile(gitDir: string): string {
  return join(gitDir, "objects", "info", "alternates");
}

async function readLines(file: string): Promise<string[]> {
  const text = await Deno.readTextFile(file).catch(() => "");
  return text.split("\n").filter((l) => l.trim() !== "");
}

/** Rewrites the alternates file in one step (temp file, then rename). */
async function writeLines(file: string, lines: string[]): Promise<void> {
  if (lines.length === 0) {
    await Deno.remove(file).catch(() => {});
    return;
  }
  await Deno.mkdir(join(file, ".."), { recursive: true });
  const tmp = `${file}.bottle-${Deno.pid}`;
  await Deno.writeTextFile(tmp, lines.join("\n") + "\n");
  await Deno.rename(tmp, file);
}

/**
 * Read-modify-write of the alternates file, one bottle at a time: two
 * bottles of one repository start and stop side by side.
 */
async function withAlternatesLock<T>(gitDir: string, f: () => Promise<T>): Promise<T> {
  const lock = `${alternatesFile(gitDir)}.bottle-lock`;
  await Deno.mkdir(join(lock, ".."), { recursive: true });
  for (let i = 0;; i++) {
    try {
      (await Deno.open(lock, { createNew: true, write: true })).close();
      break;
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      // A holder killed mid-way leaves its lock: after a minute it is stale.
      // A lock gone by now is no stale one (another waiter may already hold a new one).
      const since = (await Deno.stat(lock).catch(() => null))?.mtime?.getTime();
      if (since !== undefined && Date.now() - since > 60_000) {
        await Deno.remove(lock).catch(() => {});
      }
      if (i > 1000) throw new Error(`${lock} stays locked`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  try {
    return await f();
  } finally {
    await Deno.remove(lock).catch(() => {});
  }
}

/** Adds the store to the repository's alternates. */
export async function attachLandingStore(gitDir: string, store: string): Promise<void> {
  await Deno.mkdir(join(store, "pack"), { recursive: true });
  await Deno.mkdir(join(store, "info"), { recursive: true });
  const file = alternatesFile(gitDir);
  await withAlternatesLock(gitDir, async () => {
    const lines = await readLines(file);
    if (!lines.includes(store)) await writeLines(file, [...lines, store]);
  });
}

/** Copies the store's objects into the repository, checked, then detaches it. */
export async function importLandingStore(gitDir: string, store: string): Promise<void> {
  const file = alternatesFile(gitDir);
  if (!(await readLines(file)).includes(store)) return;
  const listed = await run([
    "git",
    `--git-dir=${gitDir}`,
    "cat-file",
    "--batch-all-objects",
    "--batch-check=%(objectname)",
  ], {
    env: { ...HOST_GIT_ENV, GIT_OBJECT_DIRECTORY: store, GIT_ALTERNATE_OBJECT_DIRECTORIES: "" },
    check: false,
  });
  const ids = listed.code === 0 ? listed.stdout.split("\n").filter(Boolean) : [];
  if (ids.length > 0) {
    const pack = spawn(["git", `--git-dir=${gitDir}`, "pack-objects", "--stdout", "-q"], {
      env: HOST_GIT_ENV,
      stdin: ids.join("\n") + "\n",
      stdout: "capture",
      stderr: "capture",
    });
    const [indexed, packed] = await Promise.all([
      run(["git", `--git-dir=${gitDir}`, "index-pack", "--stdin", "--strict"], {
        env: HOST_GIT_ENV,
        stdin: pack.process.stdout,
        check: false,
      }),
      pack.status,
    ]);
    if (packed.code !== 0 || indexed.code !== 0) {
      const why = packed.code !== 0 ? await pack.stderrText() : indexed.stderr;
      throw new UserError(
        `Could not copy the bottle's pushes into ${gitDir}: ${why.trim()} (they stay in ${store})`,
      );
    }
  }
  // Detached, every id must resolve in the repository itself: a store
  // object whose content did not match its name was not imported.
  await withAlternatesLock(gitDir, async () => {
    await writeLines(file, (await readLines(file)).filter((l) => l !== store));
  });
  const missing = await missingObjects(gitDir, ids);
  if (missing.length > 0) {
    await attachLandingStore(gitDir, store);
    throw new UserError(
      `Could not copy the bottle's pushes into ${gitDir}: ${missing.length} objects do not match their ids (they stay in ${store})`,
    );
  }
}
