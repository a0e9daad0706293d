import assert from "node:assert/strict";
import { loadCa, mintCa } from "../../src/tls/ca.ts";
import { LeafCache } from "../../src/tls/leaf_cache.ts";

async function cache(options: ConstructorParameters<typeof LeafCache>[1] = {}) {
  const minted = await mintCa();
  return new LeafCache(await loadCa(minted.certPem, minted.keyPem), options);
}

Deno.test("the leaf cache mints once per host name", async () => {
  const leaves = await cache();
  const a = await leaves.get("api.example.com");
  const b = await leaves.get("API.example.com");
  assert.equal(a, b);
  assert.equal(leaves.mintCount, 1);
  await leaves.get("other.example.com");
  assert.equal(leaves.mintCount, 2);
});

Deno.test("concurrent misses for one host share one mint", async () => {
  const leaves = await cache();
  const all = await Promise.all(Array.from({ length: 10 }, () => leaves.get("a.example")));
  assert.equal(new Set(all).size, 1);
  assert.equal(leaves.mintCount, 1);
});

Deno.test("a leaf close to expiry is minted again", async () => {
  let now = new Date();
  const leaves = await cache({ validityMs: 2 * 3600_000, renewBeforeMs: 3600_000, now: () => now });
  const first = await leaves.get("a.example");
  now = new Date(now.getTime() + 90 * 60_000);
  const second = await leaves.get("a.example");
  assert.notEqual(first.certPem, second.certPem);
  assert.equal(leaves.mintCount, 2);
});

Deno.test("the leaf cache forgets the least recently used host past its size", async () => {
  const leaves = await cache({ maxEntries: 2 });
  await leaves.get("a.example");
  await leaves.get("b.example");
  await leaves.get("a.example");
  await leaves.get("c.example");
  await leaves.get("a.example");
  assert.equal(leaves.mintCount, 3, "a stays cached: it was used more recently than b");
  await leaves.get("b.example");
  assert.equal(leaves.mintCount, 4);
});
