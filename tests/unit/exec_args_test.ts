import assert from "node:assert/strict";
import { splitExecArgs } from "../../src/cli/exec.ts";

const none = { env: {} };

Deno.test("exec: options between the bottle's name and -- are exec's, like docker exec's before the command", () => {
  assert.deepEqual(
    splitExecArgs(
      ["-u", "root", "-w", "/tmp", "-e", "A=1", "--env=B=x=y", "-t", "--", "id", "-a"],
      none,
    ),
    {
      argv: ["id", "-a"],
      opts: { user: "root", workdir: "/tmp", tty: true, env: { A: "1", B: "x=y" } },
    },
  );
  // After --, everything is the command's, options included.
  assert.deepEqual(splitExecArgs(["--", "ls", "-u", "x"], none).argv, ["ls", "-u", "x"]);
  // Without --, the words are the command (pass-through keeps its options).
  assert.deepEqual(splitExecArgs(["ls", "-la"], none).argv, ["ls", "-la"]);
  // The command's own -- is the command's.
  assert.deepEqual(splitExecArgs(["git", "log", "--", "README.md"], none).argv, [
    "git",
    "log",
    "--",
    "README.md",
  ]);
  assert.deepEqual(splitExecArgs(["-u", "root", "git", "log", "--", "x"], none), {
    argv: ["git", "log", "--", "x"],
    opts: { user: "root", env: {} },
  });
  // Given before the name (commander parsed them): kept, and added to.
  assert.deepEqual(
    splitExecArgs(["-e", "B=2", "--", "env"], { user: "agent", env: { A: "1" } }).opts,
    { user: "agent", env: { A: "1", B: "2" } },
  );
});

Deno.test("exec: what is not an exec option, or lacks its value, is refused by name", () => {
  assert.throws(
    () => splitExecArgs(["--privileged", "--", "id"], none),
    /"--privileged" before -- is not an exec option/,
  );
  assert.throws(() => splitExecArgs(["-u", "--", "id"], none), /-u needs a value/);
  assert.throws(() => splitExecArgs(["-e", "NOVALUE", "--", "id"], none), /-e takes NAME=VALUE/);
  assert.throws(() => splitExecArgs(["-u", "root", "--"], none), /missing command after --/);
});
