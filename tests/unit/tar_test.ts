import assert from "node:assert/strict";
import { readTarFiles, writeTar } from "../../src/archive/tar.ts";
import { run } from "../../src/proc/runner.ts";

Deno.test("tar: GNU tar reads what writeTar writes, with owners, modes and long names", async () => {
  const long = `${"d".repeat(60)}/${"e".repeat(60)}/file.txt`;
  const tar = writeTar([
    { path: "dir", type: "directory", mode: 0o750, uid: 1000, gid: 1000 },
    { path: "dir/run.sh", type: "file", mode: 0o755, uid: 1000, gid: 1000, data: "#!/bin/sh\n" },
    { path: long, type: "file", mode: 0o600, data: "deep" },
  ]);
  const list = await run(["tar", "-tvf", "-", "--numeric-owner"], { stdin: tar });
  assert.match(list.stdout, /^drwxr-x--- 1000\/1000 .* dir\/$/m);
  assert.match(list.stdout, /^-rwxr-xr-x 1000\/1000 .* dir\/run\.sh$/m);
  assert.ok(list.stdout.includes(long), list.stdout);
  const back = readTarFiles(tar);
  assert.equal(new TextDecoder().decode(back.get(long)), "deep");
  assert.equal(new TextDecoder().decode(back.get("dir/run.sh")), "#!/bin/sh\n");
});

Deno.test("tar: paths that leave the archive are refused", () => {
  assert.throws(() => writeTar([{ path: "../x", type: "file", mode: 0o644 }]), /relative/);
  assert.throws(() => writeTar([{ path: "/etc/x", type: "file", mode: 0o644 }]), /relative/);
});
