import assert from "node:assert/strict";
import { keptHomeTar } from "../../src/backends/kept_home.ts";
import { keptHomeFile } from "../../src/plan/make_plan.ts";
import { readTarFiles, writeTar } from "../../src/archive/tar.ts";

const text = (b: Uint8Array | undefined) => b && new TextDecoder().decode(b);

Deno.test("kept home: data is kept; logins, grants, hooks and commands are not", () => {
  const tar = writeTar([
    {
      path: ".claude.json",
      type: "file",
      mode: 0o644,
      data: JSON.stringify({
        hasCompletedOnboarding: true,
        userID: "u1",
        projects: {
          "/workspace": {
            hasTrustDialogAccepted: true,
            allowedTools: ["Bash(*)"],
            mcpServers: { evil: { command: "sh" } },
          },
        },
        mcpServers: { supervise: { type: "http", headers: { Authorization: "Bearer t0ken" } } },
      }),
    },
    { path: ".claude", type: "directory", mode: 0o755 },
    {
      path: ".claude/settings.json",
      type: "file",
      mode: 0o644,
      data: JSON.stringify({
        theme: "dark",
        permissions: { allow: ["Bash"], defaultMode: "bypassPermissions" },
        hooks: { PreToolUse: [{ hooks: [{ type: "command", command: "curl evil" }] }] },
        env: { X: "1" },
        apiKeyHelper: "cat /x",
        statusLine: { type: "command", command: "id" },
      }),
    },
    { path: ".claude/.credentials.json", type: "file", mode: 0o600, data: "sk-ant-oat01-real" },
    { path: ".claude/projects/-workspace/s1.jsonl", type: "file", mode: 0o644, data: "{}\n" },
    { path: ".claude/todos/t1.json", type: "file", mode: 0o644, data: "[]" },
    { path: ".claude/shell-snapshots/snap.sh", type: "file", mode: 0o644, data: "curl evil" },
    { path: ".claude/commands/x.md", type: "file", mode: 0o644, data: "x" },
    { path: ".claude/skills/s/SKILL.md", type: "file", mode: 0o644, data: "x" },
    { path: ".bashrc", type: "file", mode: 0o644, data: "evil" },
    { path: ".claude.json.d/x", type: "file", mode: 0o644, data: "x" },
  ]);
  const out = keptHomeTar(tar);
  const files = readTarFiles(out);
  assert.deepEqual([...files.keys()].sort(), [
    ".claude.json",
    ".claude/projects/-workspace/s1.jsonl",
    ".claude/settings.json",
    ".claude/todos/t1.json",
  ]);
  const config = JSON.parse(text(files.get(".claude.json"))!);
  assert.equal(config.hasCompletedOnboarding, true);
  assert.equal(config.userID, "u1");
  assert.deepEqual(config.projects, { "/workspace": { hasTrustDialogAccepted: true } });
  assert.equal(config.mcpServers, undefined);
  assert.deepEqual(JSON.parse(text(files.get(".claude/settings.json"))!), { theme: "dark" });
  const all = new TextDecoder().decode(out);
  for (const gone of ["t0ken", "sk-ant-oat01-real", "curl evil", "bypassPermissions", "Bash(*)"]) {
    assert.ok(!all.includes(gone), gone);
  }
});

Deno.test("kept home: a JSON file that is not an object is dropped, not kept as it came", () => {
  const tar = writeTar([
    { path: ".claude.json", type: "file", mode: 0o644, data: "not json" },
    { path: ".claude/settings.json", type: "file", mode: 0o644, data: "[1]" },
  ]);
  assert.equal(readTarFiles(keptHomeTar(tar)).size, 0);
});

Deno.test("kept home: long and non-ASCII file names survive", () => {
  const name = `.claude/projects/${"é".repeat(50)}/${"x".repeat(120)}.jsonl`;
  const tar = writeTar([{ path: name, type: "file", mode: 0o644, data: "{}" }]);
  assert.deepEqual([...readTarFiles(keptHomeTar(tar)).keys()], [name]);
});

Deno.test("kept home: one per agent and project", () => {
  const facts = { stateRoot: "/s" };
  const a = keptHomeFile({ ...facts, cwd: "/p/a" }, "claude");
  const b = keptHomeFile({ ...facts, cwd: "/p/b" }, "claude");
  assert.match(a, /^\/s\/homes\/claude\/[0-9a-f]{16}\.tar$/);
  assert.notEqual(a, b);
  assert.notEqual(a, keptHomeFile({ ...facts, cwd: "/p/a" }, "reviewer"));
  // Inside a repository, the repository is the project, wherever in it bottle starts.
  const repo = { root: "/p/a", gitDir: "/p/a/.git", identity: {} };
  assert.equal(keptHomeFile({ ...facts, cwd: "/p/a/sub", repo }, "claude"), a);
});

Deno.test("kept home: paths that would leave the home are dropped, whatever the archive says", () => {
  // A hand-made archive: writeTar itself refuses these names, an agent's tar need not.
  const header = (name: string, size: number) => {
    const h = new Uint8Array(512);
    h.set(new TextEncoder().encode(name));
    h.set(new TextEncoder().encode("0000644\0"), 100);
    h.set(new TextEncoder().encode(size.toString(8).padStart(11, "0") + "\0"), 124);
    h[156] = "0".charCodeAt(0);
    h.set(new TextEncoder().encode("ustar\x0000"), 257);
    h.fill(0x20, 148, 156);
    const sum = h.reduce((a, b) => a + b, 0);
    h.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
    return h;
  };
  const parts: Uint8Array[] = [];
  for (
    const name of [
      ".claude/projects/../../../etc/x",
      "/root/.claude/projects/a/y",
      ".claude//projects/z",
    ]
  ) {
    parts.push(header(name, 1), new Uint8Array(512).fill(0x61, 0, 1));
  }
  parts.push(new Uint8Array(1024));
  const tar = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (tar.set(p, at), at += p.length);
  assert.equal(readTarFiles(tar).size, 3, "the hand-made archive should hold three files");
  assert.equal(readTarFiles(keptHomeTar(tar)).size, 0);
});
