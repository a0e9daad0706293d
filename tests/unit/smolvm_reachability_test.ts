/**
 * The smolmachines launch refuses an engine whose bundle address this host
 * cannot reach (Docker Desktop, Colima) before it makes a VM, and says what
 * to use instead.
 */
import assert from "node:assert/strict";
import { assertReachable } from "../../src/backends/smolvm/vm_runtime.ts";
import { UserError } from "../../src/errors.ts";

Deno.test("a bundle address with a listener passes", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const accepted = listener.accept().then((c) => c.close());
    await assertReachable("127.0.0.1", (listener.addr as Deno.NetAddr).port);
    await accepted;
  } finally {
    listener.close();
  }
});

Deno.test("an unreachable bundle address is a UserError naming the engines and the way out", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close(); // nothing listens there now
  await assert.rejects(assertReachable("127.0.0.1", port), (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${err}`);
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port} is not reachable`));
    assert.match(err.message, /Docker Desktop and Colima/);
    assert.match(err.message, /--backend docker/);
    return true;
  });
});

Deno.test("an address nothing answers at is unreachable", async () => {
  // TEST-NET-1 (RFC 5737): depending on the host's routes the connect fails
  // at once or is cut off by the 3 s timeout; either way it is refused.
  await assert.rejects(assertReachable("192.0.2.1", 3128), (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${err}`);
    assert.match(err.message, /192\.0\.2\.1:3128 is not reachable from this host \(.+\)/);
    return true;
  });
});
