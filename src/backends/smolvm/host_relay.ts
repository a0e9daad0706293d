/**
 * The host end of a VM's sockets (plan: `vm.network.mode: "sockets"`): a
 * relay from each Unix socket smolvm mounts into the guest to the bundle's
 * port published on this host's loopback. It is a byte pipe and decides
 * nothing: what the agent may do is the bundle's to say, and every port it
 * relays to asks for the bottle's credential (other local processes reach
 * those ports too).
 *
 * Its sockets are in a dir only this user may enter. smolvm dials them as
 * this user; they are 0666 (still behind the 0700 dir) only for the fake
 * smolvm, which bind-mounts each into a container where the guest's
 * unprivileged user connects (as smolvm's guest agent lets it, mode 0777).
 *
 * It runs in a process of its own (`relay_main.ts`), so that it lives as
 * long as the bottle and not as long as the command that started it, and
 * it ends by itself once the bottle's record or its own is gone.
 */
import { join } from "node:path";

export interface RelaySocket {
  /** The host socket smolvm dials for the guest. */
  path: string;
  /** The bundle's port on this host's 127.0.0.1. */
  port: number;
}

/** What `relay.json` in the relay's dir holds: written by whoever starts the relay. */
export interface RelaySpec {
  sockets: RelaySocket[];
  /** The bottle's record: the relay ends when it is gone. */
  record: string;
}

export const RELAY_SPEC = "relay.json";
export const RELAY_PID = "relay.pid";
export const RELAY_LOG = "relay.log";

/**
 * How often the relay looks for its bottle's record: a backstop for a stop
 * that could not reach it (`stop` and `cleanup` end it themselves).
 */
const WATCH_MS = 5000;

/**
 * Serves every socket of the spec until `signal` aborts or the bottle's
 * record (or the spec) disappears; then closes the listeners and removes
 * the socket files. `ready` is called once every socket listens.
 */
export async function serveRelay(
  dir: string,
  spec: RelaySpec,
  opts: { signal: AbortSignal; ready: () => void; log: (line: string) => void },
): Promise<void> {
  const listeners: Deno.UnixListener[] = [];
  const conns = new Set<Deno.Conn>();
  try {
    for (const s of spec.sockets) {
      await Deno.remove(s.path).catch(() => {});
      const l = Deno.listen({ transport: "unix", path: s.path });
      listeners.push(l);
      await Deno.chmod(s.path, 0o666);
    }
    const serving = listeners.map((l, i) => accept(l, spec.sockets[i]!.port, conns, opts.log));
    opts.ready();
    await Promise.race([gone(dir, spec, opts.signal), ...serving]);
  } finally {
    for (const l of listeners) l.close();
    for (const c of conns) closeQuietly(c);
    await Promise.all(spec.sockets.map((s) => Deno.remove(s.path).catch(() => {})));
  }
}

/** Accepts until the listener is closed; a failed accept (EMFILE, say) is logged, not the end. */
async function accept(
  listener: Deno.UnixListener,
  port: number,
  conns: Set<Deno.Conn>,
  log: (line: string) => void,
): Promise<void> {
  for (;;) {
    let guest: Deno.Conn;
    try {
      guest = await listener.accept();
    } catch (err) {
      // Closed at the end: the race in serveRelay is already decided.
      if (err instanceof Deno.errors.BadResource) return;
      log(`accept: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    conns.add(guest);
    relayOne(guest, port, conns, log)
      .catch((err) => log(`relay: ${(err as Error).message}`))
      .finally(() => conns.delete(guest));
  }
}

async function relayOne(
  guest: Deno.Conn,
  port: number,
  conns: Set<Deno.Conn>,
  log: (line: string) => void,
): Promise<void> {
  let bundle: Deno.TcpConn;
  try {
    bundle = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch (err) {
    log(`127.0.0.1:${port}: ${(err as Error).message}`);
    closeQuietly(guest);
    return;
  }
  conns.add(bundle);
  try {
    // Each direction ends on its own: a CONNECT tunnel half-closes.
    await Promise.all([pump(guest, bundle), pump(bundle, guest)]);
  } finally {
    conns.delete(bundle);
    closeQuietly(guest);
    closeQuietly(bundle);
  }
}

/** Copies `from` to `to` until `from` ends, then half-closes `to`; a reset ends both. */
async function pump(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await to.write(buf.subarray(off, n));
    }
    await to.closeWrite().catch(() => {});
  } catch {
    closeQuietly(from);
    closeQuietly(to);
  }
}

function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch { /* already closed */ }
}

/** Resolves once the signal aborts, or the bottle's record or this relay's spec is gone. */
async function gone(dir: string, spec: RelaySpec, signal: AbortSignal): Promise<void> {
  const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);
  const aborted = new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
  while (!signal.aborted) {
    if (!(await exists(spec.record)) || !(await exists(join(dir, RELAY_SPEC)))) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([aborted, new Promise((r) => (timer = setTimeout(r, WATCH_MS)))]);
    clearTimeout(timer);
  }
}
