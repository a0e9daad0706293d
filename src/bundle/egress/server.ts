/**
 * The agent-facing listener: an HTTP/1.1 forward proxy. It loads what the
 * config names, accepts connections, and reads each request head to hand it
 * on: CONNECT to `handleConnect`, absolute-form `http://` to
 * `PlainForwarder`, and origin-form `GET /healthz` (the bundle's health
 * probe) it answers itself.
 */
import net from "node:net";
import { splitCertificates } from "../../tls/pem.ts";
import { redact } from "../../proc/secrets.ts";
import { AuditLog } from "../audit_log.ts";
import { BufferedWire, LimitExceededError } from "./buffered.ts";
import {
  type EgressConfig,
  type ResolvedRoute,
  resolveProxyToken,
  resolveRoutes,
} from "./config.ts";
import { handleConnect } from "./connect.ts";
import {
  denyRequest,
  type EgressContext,
  errorMessage,
  type LeafSource,
  readHeadIdle,
  simpleResponse,
  tryWrite,
} from "./context.ts";
import { PlainForwarder } from "./forward.ts";
import {
  HttpError,
  keepsAlive,
  parseRequestHead,
  requestFraming,
  type RequestHead,
} from "./http1.ts";
import { hasProxyCredential, PROXY_CHALLENGE } from "./proxy_auth.ts";
import { parseProxyUrl } from "./upstream.ts";
import { NodeWire } from "./wire.ts";

/** Where Linux distributions keep the system CA bundle; the first that exists is used. */
export const SYSTEM_CA_BUNDLES = [
  "/etc/ssl/certs/ca-certificates.crt",
  "/etc/pki/tls/certs/ca-bundle.crt",
  "/etc/ssl/cert.pem",
];

export interface StartEgressOptions {
  /** Environment lookup for route secrets. Default: `Deno.env.get`. */
  getEnv?: (name: string) => string | undefined;
  /** Diagnostics sink. Default: stderr. */
  log?: (message: string) => void;
  /** System CA bundle paths to try; [] to trust only `upstreamCaFiles` and built-in roots. */
  systemCaBundles?: string[];
  idleTimeoutMs?: number;
}

export interface EgressServer {
  /** The bound address (the port is real even when the config said 0). */
  readonly addr: { hostname: string; port: number };
  /**
   * Settles once the CA is loaded (rejects if it cannot be): egress listens
   * before that, and a routed handshake that comes first waits for it.
   */
  readonly caLoaded: Promise<void>;
  /** Stops accepting, drops open connections, closes the audit log. */
  close(): Promise<void>;
}

/** Loads keys, CAs and secrets named by `config`, then listens. */
export async function startEgress(
  config: EgressConfig,
  options: StartEgressOptions = {},
): Promise<EgressServer> {
  const routes: ResolvedRoute[] = resolveRoutes(config.routes, options.getEnv);
  const proxyToken = resolveProxyToken(config.proxyAuth, options.getEnv);
  const log = options.log ?? ((m: string) => console.error(`egress: ${redact(m)}`));
  const leaves = loadLeaves(config.caCertFile, config.caKeyFile);
  const upstreamCaCerts = await loadTrust(
    config.upstreamCaFiles,
    options.systemCaBundles ?? SYSTEM_CA_BUNDLES,
  );
  const audit = await AuditLog.open(config.auditLog, config.bottle);
  const ctx: EgressContext = {
    proxy: parseProxyUrl(config.upstreamProxy),
    routesProxy: parseProxyUrl(config.routesProxy ?? config.upstreamProxy),
    routes,
    leaves,
    answeredHealth: () => leaves.start(),
    upstreamCaCerts,
    audit,
    log: (m) => log(redact(m)),
    idleTimeoutMs: options.idleTimeoutMs ?? 120_000,
    ...(proxyToken !== undefined ? { proxyToken } : {}),
    ...(config.allowlist ? { allowlist: config.allowlist } : {}),
  };

  const sockets = new Set<net.Socket>();
  const onConnection = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    if (socket.remoteAddress !== undefined) socket.setNoDelay(true);
    serveAgent(ctx, socket).catch((err) => ctx.log(`Connection failed: ${errorMessage(err)}`));
  };
  const servers: net.Server[] = [];
  const listen = async (where: string, start: (s: net.Server, done: () => void) => void) => {
    const server = net.createServer({ allowHalfOpen: true }, onConnection);
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      start(server, () => {
        server.off("error", reject);
        resolve();
      });
    }).catch((err) => {
      throw new Error(`Cannot listen on ${where}: ${errorMessage(err)}`);
    });
    server.on("error", (err) => ctx.log(`Listener error: ${errorMessage(err)}`));
    return server;
  };
  const closeAll = async () => {
    const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of sockets) s.destroy();
    await Promise.all(closed);
    audit.close();
  };
  let tcp: net.Server;
  try {
    const { host, port, socket } = config.listen;
    tcp = await listen(`${host}:${port}`, (s, done) => s.listen(port, host, done));
    if (socket) {
      await Deno.remove(socket).catch(() => {});
      await listen(socket, (s, done) => s.listen(socket, done));
      // The agent runs as another user: it must be able to connect.
      await Deno.chmod(socket, 0o666);
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  // The X.509 library is evaluated once the bundle's health probe has had its
  // answer (evaluating it blocks this thread for a while), or after a second.
  const warmTimer = setTimeout(() => leaves.start(), 1000);
  Deno.unrefTimer(warmTimer);
  const address = tcp.address() as net.AddressInfo;
  return {
    addr: { hostname: address.address, port: address.port },
    caLoaded: leaves.loaded,
    close: () => {
      clearTimeout(warmTimer);
      return closeAll();
    },
  };
}

/**
 * The CA and the leaf cache, loaded in the background: the X.509 library is
 * most of egress's start-up time, and only routed handshakes need it, so
 * egress answers (and the bundle is ready) without waiting for it.
 */
function loadLeaves(
  certFile: string,
  keyFile: string,
): LeafSource & { loaded: Promise<void>; start(): void } {
  const go = Promise.withResolvers<void>();
  const cache = (async () => {
    await go.promise;
    const [{ loadCaFiles }, { LeafCache }] = await Promise.all([
      import("../../tls/ca.ts"),
      import("../../tls/leaf_cache.ts"),
    ]);
    return new LeafCache(await loadCaFiles(certFile, keyFile));
  })();
  const loaded = cache.then(() => {});
  loaded.catch(() => {}); // reported by whoever awaits `caLoaded`
  return {
    get: (host) => {
      go.resolve(); // a handshake before the listeners are up starts the load itself
      return cache.then((c) => c.get(host));
    },
    loaded,
    start: () => go.resolve(),
  };
}

/** The system bundle (if any) plus every `upstreamCaFiles` certificate, one PEM each. */
async function loadTrust(files: string[], systemBundles: string[]): Promise<string[]> {
  const certs: string[] = [];
  for (const path of systemBundles) {
    try {
      certs.push(...splitCertificates(await Deno.readTextFile(path)));
      break;
    } catch {
      // Not this distribution's path.
    }
  }
  for (const path of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      throw new Error(`Cannot read upstream CA file "${path}": ${errorMessage(err)}`);
    }
    const found = splitCertificates(text);
    if (found.length === 0) throw new Error(`Upstream CA file "${path}" holds no PEM certificate`);
    certs.push(...found);
  }
  return certs;
}

async function serveAgent(ctx: EgressContext, socket: net.Socket): Promise<void> {
  const nodeWire = new NodeWire(socket);
  const agent = new BufferedWire(nodeWire);
  const forwarder = new PlainForwarder(ctx, agent);
  let challenged = false;
  try {
    for (;;) {
      let req: RequestHead;
      try {
        const bytes = await readHeadIdle(agent, ctx.idleTimeoutMs);
        if (bytes === null) return;
        req = parseRequestHead(bytes);
      } catch (err) {
        if (err instanceof HttpError || err instanceof LimitExceededError) {
          const status = err instanceof HttpError ? err.status : 431;
          const bytes = simpleResponse(status, `egress: ${errorMessage(err)}\n`, { close: true });
          await tryWrite(agent, bytes);
          ctx.audit.write({
            method: "-",
            host: "-",
            status,
            bytes_up: 0,
            bytes_down: bytes.length,
            decision: "denied",
            reason: errorMessage(err),
          });
        }
        return;
      }
      // Only requests to egress itself (origin-form: its health probe) need no credential.
      const toOutside = req.method === "CONNECT" || !req.target.startsWith("/");
      if (
        ctx.proxyToken !== undefined && toOutside &&
        !hasProxyCredential(req.headers, ctx.proxyToken)
      ) {
        // One challenge per connection: a client that answers it wrongly is closed on.
        if (!(await refuseUnauthenticated(ctx, agent, req, !challenged))) return;
        challenged = true;
        continue;
      }
      if (req.method === "CONNECT") {
        await handleConnect(ctx, agent, nodeWire, req);
        return;
      }
      if (req.target.startsWith("/")) {
        const kept = await answerOriginForm(agent, req);
        ctx.answeredHealth?.();
        if (!kept) return;
        continue;
      }
      if (!(await forwarder.forward(req))) return;
    }
  } finally {
    forwarder.close();
    agent.close();
  }
}

/**
 * 407 for a request without the proxy credential: nothing is dialled and no
 * credential is injected. The connection stays open for the retry when the
 * request had no body and the client keeps alive (curl's anyauth asks first
 * and answers the challenge on the same connection); otherwise it closes.
 */
async function refuseUnauthenticated(
  ctx: EgressContext,
  agent: BufferedWire,
  req: RequestHead,
  mayKeep: boolean,
): Promise<boolean> {
  let keep = false;
  try {
    keep = mayKeep && keepsAlive(req.version, req.headers) && requestFraming(req).kind === "none";
  } catch {
    keep = false;
  }
  const host = req.method === "CONNECT" ? req.target : (() => {
    try {
      return new URL(req.target).host;
    } catch {
      return "-";
    }
  })();
  return await denyRequest(ctx, agent, {
    method: req.method,
    host,
    status: 407,
    reason: "No valid proxy credential",
    keep,
    headers: [PROXY_CHALLENGE],
  });
}

/**
 * Requests addressed to egress itself. Only the health probe lives here;
 * it is not audited, being no traffic of the agent's to the outside.
 */
async function answerOriginForm(agent: BufferedWire, req: RequestHead): Promise<boolean> {
  const keep = keepsAlive(req.version, req.headers);
  const isHealth = (req.method === "GET" || req.method === "HEAD") &&
    req.target.split("?")[0] === "/healthz";
  let bodyless = false;
  try {
    bodyless = requestFraming(req).kind === "none";
  } catch {
    // Framing that smuggles (Content-Length and Transfer-Encoding): the 400 below.
  }
  if (isHealth && bodyless) {
    await agent.write(simpleResponse(200, "ok\n", { close: !keep, head: req.method === "HEAD" }));
    return keep;
  }
  await tryWrite(
    agent,
    simpleResponse(400, "egress: this is a forward proxy; use it as HTTP(S)_PROXY\n", {
      close: true,
    }),
  );
  return false;
}
