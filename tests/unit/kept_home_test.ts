import assert from "node:assert/strict";
import { keptHomeTar } from "../../src/backends/kept_home.ts";
import { readTarFiles, writeTar } from "../../src/archive/tar.ts";

const text = (b: Uint8Array | undefined) => b && new TextDecoder().decode(b);

Deno.test("kept home: Claude Code's files are kept, its login and MCP servers are not", () => {
  const tar = writeTar([
    {
      path: ".claude.json",
      type: "file",
      mode: 0o644,
      data: JSON.stringify({
        hasCompletedOnboarding: true,
        projects: { "/workspace": { hasTrustDialogAccepted: true } },
        mcpServers: { supervise: { type: "http", headers: { Authorization: "Bearer t0ken" } } },
      }),
    },
    { path: ".claude", type: "directory", mode: 0o755 },
    { path: ".claude/settings.json", type: "file", mode: 0o644, data: '{"theme":"dark"}' },
    { path: ".claude/.credentials.json", type: "file", mode: 0o600, data: "sk-ant-oat01-real" },
    { path: ".claude/projects", type: "directory", mode: 0o755 },
    { path: ".claude/projects/-workspace/s1.jsonl", type: "file", mode: 0o644, data: "{}\n" },
    // Outside what is kept: never goes back into a bottle.
    { path: ".bashrc", type: "file", mode: 0o644, data: "evil" },
    { path: ".claude.json.d/x", type: "file", mode: 0o644, data: "x" },
  ]);
  const files = readTarFiles(keptHomeTar(tar));
  assert.deepEqual([...files.keys()].sort(), [
    ".claude.json",
    ".claude/projects/-workspace/s1.jsonl",
    ".claude/settings.json",
  ]);
  const config = JSON.parse(text(files.get(".claude.json"))!);
  assert.equal(config.hasCompletedOnboarding, true);
  assert.deepEqual(config.projects, { "/workspace": { hasTrustDialogAccepted: true } });
  assert.equal(config.mcpServers, undefined);
  assert.ok(!new TextDecoder().decode(keptHomeTar(tar)).includes("t0ken"));
  assert.ok(!new TextDecoder().decode(keptHomeTar(tar)).includes("sk-ant-oat01-real"));
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
  for (const name of [".claude/../../etc/x", "/root/.claude/y", ".claude//z"]) {
    parts.push(header(name, 1), new Uint8Array(512).fill(0x61, 0, 1));
  }
  parts.push(new Uint8Array(1024));
  const tar = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (tar.set(p, at), at += p.length);
  assert.equal(readTarFiles(tar).size, 3, "the hand-made archive should hold three files");
  assert.equal(readTarFiles(keptHomeTar(tar)).size, 0);
});
