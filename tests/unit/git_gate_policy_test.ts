/** The git gate's rules, as pure functions: each would let a bad push through if it broke. */
import assert from "node:assert/strict";
import { branchMatches, refViolation, sizeViolation } from "../../src/bundle/git_gate/policy.ts";
import { scanPatch } from "../../src/bundle/git_gate/secret_scan.ts";
import { parseUpdates } from "../../src/bundle/git_gate/hooks.ts";

const Z = "0".repeat(40);
const A = "a".repeat(40);
const B = "b".repeat(40);
const policy = { branches: ["bottle/*", "fix-?"], maxPushBytes: 1024, allowTags: false, hooks: [] };

Deno.test("git gate policy: branch patterns match whole names, * across slashes", () => {
  assert.ok(branchMatches("bottle/*", "bottle/x"));
  assert.ok(branchMatches("bottle/*", "bottle/x/y"));
  assert.ok(!branchMatches("bottle/*", "main"));
  assert.ok(!branchMatches("bottle/*", "xbottle/y"));
  assert.ok(branchMatches("*", "anything/at/all"));
  // Regex characters are literal.
  assert.ok(!branchMatches("fix-?", "fix-1"));
  assert.ok(branchMatches("a.b", "a.b") && !branchMatches("a.b", "axb"));
});

Deno.test("git gate policy: each rule names itself", () => {
  const rule = (u: { old: string; new: string; ref: string }, ff?: boolean, p = policy) =>
    refViolation(u, p, ff)?.rule;
  assert.equal(rule({ old: A, new: Z, ref: "refs/heads/bottle/x" }), "deletion");
  assert.equal(rule({ old: Z, new: A, ref: "refs/tags/v1" }), "tags");
  assert.equal(
    rule({ old: Z, new: A, ref: "refs/tags/v1" }, undefined, { ...policy, allowTags: true }),
    undefined,
  );
  assert.equal(
    rule({ old: A, new: B, ref: "refs/tags/v1" }, undefined, { ...policy, allowTags: true }),
    "tags",
  );
  assert.equal(rule({ old: Z, new: A, ref: "refs/notes/commits" }), "namespace");
  assert.equal(rule({ old: Z, new: A, ref: "refs/heads/main" }), "branch-pattern");
  assert.equal(rule({ old: A, new: B, ref: "refs/heads/bottle/x" }, false), "non-fast-forward");
  assert.equal(rule({ old: A, new: B, ref: "refs/heads/bottle/x" }, true), undefined);
  assert.equal(rule({ old: Z, new: A, ref: "refs/heads/bottle/x" }), undefined);
  assert.equal(sizeViolation(1025, policy)?.rule, "size");
  assert.equal(sizeViolation(1024, policy), undefined);
});

Deno.test("git gate hooks: input lines parse, bad ones are refused", () => {
  assert.deepEqual(parseUpdates(`${Z} ${A} refs/heads/x\n\n${A} ${B} refs/heads/y\n`), [
    { old: Z, new: A, ref: "refs/heads/x" },
    { old: A, new: B, ref: "refs/heads/y" },
  ]);
  assert.throws(() => parseUpdates(`${Z} refs/heads/x\n`), /bad hook input/);
});

const patch = (file: string, lines: string[]) =>
  `commit ${A}\n\ndiff --git a/${file} b/${file}\nnew file mode 100644\n--- /dev/null\n+++ b/${file}\n@@ -0,0 +1,${lines.length} @@\n${
    lines.map((l) => `+${l}`).join("\n")
  }\n`;

Deno.test("git gate secret scan: known formats and the bottle's own secrets, by place not value", () => {
  const cases: [string, string][] = [
    ["an AWS access key", "key = AKIAIOSFODNN7EXAMPLE"],
    ["a GitHub token", `t="ghp_${"x".repeat(36)}"`],
    ["a GitHub token", `github_pat_${"A".repeat(30)}`],
    ["an Anthropic key", `sk-ant-api03-${"Q".repeat(40)}`],
    ["a private key", "-----BEGIN OPENSSH PRIVATE KEY-----"],
    ["a private key", "-----BEGIN PRIVATE KEY-----"],
    ["a Slack token", "xoxb-1234567890-abcdef"],
    ["a secret of this bottle", "value: hunter2-very-secret"],
  ];
  for (const [kind, line] of cases) {
    const f = scanPatch(patch("src/conf.txt", ["ok", line]), ["hunter2-very-secret"]);
    assert.deepEqual(f, [{ commit: A, file: "src/conf.txt", line: 2, kind }], line);
  }
  // The bottle's placeholders are no secret; nor are removed lines or short secrets.
  const clean = scanPatch(
    patch("a", [`sk-ant-api03-bottle-placeholder-${"0".repeat(60)}AA`, "pw: abc"]) +
      `diff --git a/b b/b\n--- a/b\n+++ b/b\n@@ -1 +0,0 @@\n-AKIAIOSFODNN7EXAMPLE\n`,
    ["abc"],
  );
  assert.deepEqual(clean, []);
  // A "+++" line inside a hunk is content, and is scanned.
  const inHunk = scanPatch(patch("c", ["x", "++ AKIAIOSFODNN7EXAMPLE"]), []);
  assert.deepEqual(inHunk.map((f) => [f.file, f.line]), [["c", 2]]);
});
