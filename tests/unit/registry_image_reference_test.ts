import assert from "node:assert/strict";
import { familiarReference, isDigest, splitReference } from "../../src/registry/image_reference.ts";

Deno.test("familiarReference shortens Docker Hub names and adds the default tag", () => {
  assert.equal(familiarReference("docker.io/library/debian:bookworm-slim"), "debian:bookworm-slim");
  assert.equal(familiarReference("docker.io/bottle/agent:1"), "bottle/agent:1");
  assert.equal(familiarReference("index.docker.io/library/alpine"), "alpine:latest");
  assert.equal(familiarReference("debian"), "debian:latest");
  assert.equal(familiarReference("library/debian:12"), "debian:12");
  assert.equal(familiarReference("library/a/b:1"), "library/a/b:1");
  assert.equal(familiarReference("localhost:5000/x/y"), "localhost:5000/x/y:latest");
  assert.equal(familiarReference("ghcr.io/o/r:2"), "ghcr.io/o/r:2");
  assert.equal(familiarReference(`x@sha256:${"a".repeat(64)}`), `x@sha256:${"a".repeat(64)}`);
});

Deno.test("splitReference keeps a registry port with the repository", () => {
  assert.deepEqual(splitReference("bottle/agent:abc123"), { repo: "bottle/agent", tag: "abc123" });
  assert.deepEqual(splitReference("localhost:5000/a"), { repo: "localhost:5000/a", tag: "latest" });
  assert.deepEqual(splitReference("a"), { repo: "a", tag: "latest" });
});

Deno.test("isDigest accepts only full sha256 digests", () => {
  assert.ok(isDigest(`sha256:${"0".repeat(64)}`));
  assert.ok(!isDigest(`sha256:${"0".repeat(63)}`));
  assert.ok(!isDigest(`sha512:${"0".repeat(64)}`));
  assert.ok(!isDigest(`sha256:${"A".repeat(64)}`));
});
