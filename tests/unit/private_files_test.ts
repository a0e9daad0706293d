import assert from "node:assert/strict";
import { join } from "node:path";
import { writePrivateFile } from "../../src/state/private_files.ts";

Deno.test("private files: 0600 from the start, replaced atomically, no temp file left", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "record.json");
    await writePrivateFile(path, "one");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    // Replacing keeps the mode and never shows a half-written file: the inode changes.
    const before = (await Deno.stat(path)).ino;
    await writePrivateFile(path, new TextEncoder().encode("two"));
    assert.equal(await Deno.readTextFile(path), "two");
    assert.notEqual((await Deno.stat(path)).ino, before);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["record.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("private files: a write that fails leaves the old file and no temp file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "record.json");
    await writePrivateFile(path, "old");
    // A directory in the way of the rename makes the last step fail.
    await assert.rejects(() => writePrivateFile(join(dir, "missing", "x.json"), "new"));
    await Deno.mkdir(join(dir, "blocked"));
    await assert.rejects(() => writePrivateFile(join(dir, "blocked"), "new"));
    assert.equal(await Deno.readTextFile(path), "old");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "blocked",
      "record.json",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
