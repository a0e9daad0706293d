/**
 * The git gate daemon: makes a mirror per upstream, writes its hooks, then
 * serves git's smart HTTP protocol on the agent-facing socket (and on TCP
 * for the health check, or for a VM agent). This bottle's secret values
 * come on stdin, as egress gets them, and reach only the hooks, whose
 * secret scan looks for them in every pushed line.
 */
import { readGateConfig } from "./gate_config.ts";
import { makeMirror } from "./mirror.ts";
import {
  makeRemoteMirror,
  MirrorRefresher,
  type RemoteAccess,
  remoteAccess,
} from "./remote_upstream.ts";
import { serveSmartHttp } from "./smart_http.ts";
import { GATE_CONFIG_ENV, GATE_REMOTE_ACCESS_ENV, GATE_SECRETS_ENV } from "./hooks.ts";
import { registerSecret } from "../../proc/secrets.ts";
import { timingSafeEqual } from "node:crypto";

const SYSTEM_CA_FILE = "/etc/ssl/certs/ca-certificates.crt";

/** `self`: how to run the bundle script again (the hooks are this script). */
export async function main(
  args: string[],
  self: { deno: string; script: string },
): Promise<number> {
  const config = valueOf(args, "--config");
  const cfg = await readGateConfig(config);
  let secrets: string[] = [];
  let all: Record<string, string> = {};
  if (args.includes("--secrets-from-stdin")) {
    all = JSON.parse(await new Response(Deno.stdin.readable).text()) as Record<string, string>;
    secrets = cfg.secretEnv.map((k) => all[k]).filter((v): v is string => typeof v === "string");
    for (const s of secrets) registerSecret(s);
    if (cfg.tokenEnv && all[cfg.tokenEnv]) registerSecret(all[cfg.tokenEnv]!);
  }

  const hooksDir = `${cfg.mirrorsDir}/hooks`;
  await Deno.mkdir(hooksDir, { recursive: true });
  for (const hook of ["pre-receive", "post-receive"]) {
    await Deno.writeTextFile(
      `${hooksDir}/${hook}`,
      `#!/bin/sh\nexec ${q(self.deno)} run --allow-all --no-prompt --no-config --cached-only ${
        q(self.script)
      } gate-hook ${hook}\n`,
      { mode: 0o755 },
    );
  }
  const extraCaPems = await Promise.all(
    (cfg.upstreamCaFiles ?? []).map((f) => Deno.readTextFile(f)),
  );
  const access = new Map<string, RemoteAccess>();
  const made = await Promise.allSettled(cfg.upstreams.map(async (u) => {
    if (u.kind === "host") return void await makeMirror(cfg.mirrorsDir, hooksDir, u);
    const a = await remoteAccess(u, u.identity ? all[u.identity.env] : undefined, {
      extraCaPems,
      systemCaFile: SYSTEM_CA_FILE,
    });
    access.set(u.name, a);
    await makeRemoteMirror(cfg.mirrorsDir, hooksDir, u, a);
  }));
  // One line per upstream the bottle cannot have, as the launch's error says.
  const failed = made.flatMap((r) => (r.status === "rejected" ? [r.reason as Error] : []));
  for (const err of failed) console.error(`git-gate: ${err.message}`);
  if (failed.length > 0) return 1;
  const refresher = new MirrorRefresher(cfg.mirrorsDir, access);
  const remotes = new Map(cfg.upstreams.flatMap((u) => (u.kind === "remote" ? [[u.name, u]] : [])));

  const opts = {
    mirrorsDir: cfg.mirrorsDir,
    upstreams: new Set(cfg.upstreams.map((u) => u.name)),
    // The agent sees the upstream as it is now, not as it was at launch.
    beforeRefs: async (name: string) => {
      const u = remotes.get(name);
      if (!u) return undefined;
      try {
        await refresher.refresh(u);
        return undefined;
      } catch (err) {
        console.error(`git-gate: ${(err as Error).message}`);
        return `bottle git gate: ${(err as Error).message}`;
      }
    },
    env: {
      [GATE_CONFIG_ENV]: config,
      [GATE_SECRETS_ENV]: JSON.stringify(secrets),
      [GATE_REMOTE_ACCESS_ENV]: JSON.stringify(Object.fromEntries(access)),
      ...passThrough(["DENO_DIR", "DENO_NO_UPDATE_CHECK", "NO_COLOR"]),
    },
  };
  const token = cfg.tokenEnv ? all[cfg.tokenEnv] : undefined;
  if (cfg.tokenEnv && !token) {
    console.error(`git-gate: its token (${cfg.tokenEnv}) is missing from the bundle's secrets`);
    return 1;
  }
  const handler = (req: Request): Promise<Response> | Response => {
    if (new URL(req.url).pathname === "/healthz") return new Response("ok\n");
    if (token && !hasToken(req, token)) {
      return new Response("this bottle's gate token is required\n", {
        status: 401,
        headers: { "www-authenticate": 'Basic realm="bottle git gate"' },
      });
    }
    return serveSmartHttp(req, opts).catch((err) => {
      console.error(`git-gate: ${(err as Error).message}`);
      return new Response("git gate error\n", { status: 500 });
    });
  };
  const servers: Deno.HttpServer[] = [
    Deno.serve({ hostname: cfg.listen.host, port: cfg.listen.port, onListen: () => {} }, handler),
  ];
  if (cfg.listen.socket) {
    await Deno.remove(cfg.listen.socket).catch(() => {});
    servers.push(Deno.serve({ path: cfg.listen.socket, onListen: () => {} }, handler));
    // The agent's forwarder connects as another user.
    await waitFor(cfg.listen.socket);
    await Deno.chmod(cfg.listen.socket, 0o666);
  }
  const stop = new Promise<void>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, resolve);
  });
  await stop;
  await Promise.all(servers.map((s) => s.shutdown()));
  return 0;
}

/** Basic credentials whose password is the token (the user name is anything). */
function hasToken(req: Request, token: string): boolean {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.headers.get("authorization") ?? "");
  if (!m) return false;
  let given: string;
  try {
    given = atob(m[1]!);
  } catch {
    return false;
  }
  const password = new TextEncoder().encode(given.slice(given.indexOf(":") + 1));
  const want = new TextEncoder().encode(token);
  return password.length === want.length && timingSafeEqual(password, want);
}

function valueOf(args: string[], flag: string): string {
  const i = args.indexOf(flag);
  const v = i >= 0 ? args[i + 1] : undefined;
  if (!v) throw new Error(`git-gate: ${flag} FILE is required`);
  return v;
}

function passThrough(names: string[]): Record<string, string> {
  return Object.fromEntries(
    names.flatMap((n) => (Deno.env.get(n) !== undefined ? [[n, Deno.env.get(n)!]] : [])),
  );
}

async function waitFor(path: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await Deno.stat(path).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
