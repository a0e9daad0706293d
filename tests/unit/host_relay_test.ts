/**
 * The host relay of a VM with no network, as a real process: its socket
 * reaches the bundle's port with half-close kept, it outlives nothing it
 * should not (stopped by its pid only when it is that dir's relay, and
 * ending by itself once its bottle's record is gone).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  isRelayOf,
  relayPid,
  startRelay,
  stopRelay,
} from "../../src/backends/smolvm/relay_process.ts";

/** A TCP server on 127.0.0.1 that answers `got:<everything read>` once the client half-closes. */
function upstream(): { port: number; close(): void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const c of l) {
      (async () => {
        const chunks: Uint8Array[] = [];
        const buf = new Uint8Array(4096);
        for (let n; (n = await c.read(buf)) !== null;) chunks.push(buf.slice(0, n));
        // The relay half-closed its side: the answer still goes back.
        const got = new TextDecoder().decode(new Uint8Array(chunks.flatMap((x) => [...x])));
        await c.write(new TextEncoder().encode(`got:${got}`)).catch(() => {});
        c.close();
      })();
    }
  })().catch(() => {});
  return { port: (l.addr as Deno.NetAddr).port, close: () => l.close() };
}

async function through(path: string, text: string): Promise<string> {
  const c = await Deno.connect({ transport: "unix", path });
  await c.write(new TextEncoder().encode(text));
  await c.closeWrite();
  return await new Response(c.readable).text();
}

async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
  // The relay looks for its record every 5 s.
  for (let i = 0; i < 300; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

Deno.test("host relay: a socket per port, half-close kept, stopped by stop, gone with its record", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "bottle-relay-" });
  const up = upstream();
  try {
    const record = join(tmp, "bottle.json");
    await Deno.writeTextFile(record, "{}");
    const dir = join(tmp, "relay");
    const sock = join(dir, "egress.sock");
    await startRelay(dir, { record, sockets: [{ path: sock, port: up.port }] });
    const pid = await relayPid(dir);
    assert.ok(pid && pid !== Deno.pid, "the relay is a process of its own");
    assert.ok(await isRelayOf(pid, dir));
    // Only this user enters the dir; the socket is handed on to the guest's user.
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(sock)).mode! & 0o777, 0o666);
    assert.equal(
      await through(sock, "CONNECT x:443 HTTP/1.1\r\n\r\n"),
      "got:CONNECT x:443 HTTP/1.1\r\n\r\n",
    );
    // Several connections at once.
    const many = await Promise.all([1, 2, 3, 4, 5].map((i) => through(sock, `n${i}`)));
    assert.deepEqual(many, ["got:n1", "got:n2", "got:n3", "got:n4", "got:n5"]);

    // One relay per dir: a second one (another bottle's, say) is refused while this one runs.
    await assert.rejects(
      startRelay(dir, { record, sockets: [{ path: sock, port: up.port }] }),
      /A relay already serves/,
    );
    assert.equal(await through(sock, "still"), "got:still");

    // Stopped at once (its own watch would take seconds): gone when stop returns.
    await stopRelay(dir);
    assert.equal(await isRelayOf(pid, dir), false);
    await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);

    // Its bottle's record removed (a stop that could not reach it): it ends by itself.
    await startRelay(dir, { record, sockets: [{ path: sock, port: up.port }] });
    const second = (await relayPid(dir))!;
    assert.equal(await through(sock, "ping"), "got:ping"); // positive control: it serves
    await Deno.remove(record);
    await until("the relay to end", async () => !(await isRelayOf(second, dir)));
    // It leaves nothing: its sockets, pid file, spec and log went with its dir.
    await until("its dir to go", async () => !(await Deno.stat(dir).then(() => true, () => false)));
    await stopRelay(dir);
  } finally {
    up.close();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});

Deno.test("host relay: stop signals no process that is not the dir's relay (a reused pid)", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "bottle-relay-" });
  const dir = join(tmp, "relay");
  // Its command line names the dir, but it is no relay.
  const other = new Deno.Command("sh", { args: ["-c", "sleep 30", dir] }).spawn();
  try {
    await Deno.mkdir(dir);
    await Deno.writeTextFile(join(dir, "relay.pid"), `${other.pid}\n`);
    assert.equal(await isRelayOf(other.pid, dir), false);
    await stopRelay(dir);
    // Still running: the signal went nowhere.
    const alive = await Promise.race([
      other.status.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), 300)),
    ]);
    assert.equal(alive, true);
    await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
  } finally {
    other.kill("SIGKILL");
    await other.status;
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});

Deno.test("host relay: a relay that cannot listen says why", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "bottle-relay-" });
  try {
    const record = join(tmp, "bottle.json");
    await Deno.writeTextFile(record, "{}");
    const dir = join(tmp, "relay");
    // A socket path in a dir that does not exist: bind fails.
    await assert.rejects(
      startRelay(dir, { record, sockets: [{ path: join(tmp, "no", "such", "x.sock"), port: 1 }] }),
      /The host relay for the VM's sockets did not start \(exit 1\): relay: .*No such file/,
    );
    assert.equal(await relayPid(dir), undefined);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});
