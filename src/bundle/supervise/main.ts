/**
 * The supervise daemon: an MCP server over streamable HTTP (the SDK's
 * handler, which serves the stateless 2026-07-28 revision and the 2025
 * ones Claude Code speaks), on the agent-facing socket and on TCP (the
 * health check, or a VM agent, which must then send this bottle's token).
 * Requests wait in the queue dir for `bottle supervise` on the host.
 */
import { createMcpHandler } from "@modelcontextprotocol/server";
import { timingSafeEqual } from "node:crypto";
import { readSuperviseConfig } from "./supervise_config.ts";
import { Supervisor } from "./supervisor.ts";
import { superviseServer } from "./mcp_tools.ts";
import { AuditLog } from "../audit_log.ts";
import { registerSecret } from "../../proc/secrets.ts";

export const MCP_PATH = "/mcp";

export async function main(args: string[]): Promise<number> {
  const i = args.indexOf("--config");
  const path = i >= 0 ? args[i + 1] : undefined;
  if (!path) {
    console.error("supervise: --config FILE is required");
    return 2;
  }
  const cfg = await readSuperviseConfig(path);
  let secrets: Record<string, string> = {};
  if (args.includes("--secrets-from-stdin")) {
    secrets = JSON.parse(await new Response(Deno.stdin.readable).text());
  }
  const token = cfg.tokenEnv ? secrets[cfg.tokenEnv] : undefined;
  if (cfg.tokenEnv && !token) {
    console.error(`supervise: its token (${cfg.tokenEnv}) is missing from the bundle's secrets`);
    return 1;
  }
  if (token) registerSecret(token);
  await Deno.mkdir(cfg.queueDir, { recursive: true, mode: 0o700 });
  const audit = await AuditLog.open(cfg.auditLog, cfg.bottle);
  const sup = new Supervisor(cfg.queueDir, cfg.bottle, cfg.timeoutSeconds * 1000, audit);
  await sup.closeLeftovers();
  const mcp = createMcpHandler(() => superviseServer(sup));
  // Each protocol revision clients speak, said once (in the bundle's output).
  const spoken = new Set<string>();

  const handler = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    if (url.pathname === "/healthz") return new Response("ok\n");
    if (url.pathname !== MCP_PATH) return new Response("not found\n", { status: 404 });
    if (token && !hasBearer(req, token)) {
      return new Response("this bottle's supervise token is required\n", {
        status: 401,
        headers: { "www-authenticate": 'Bearer realm="bottle supervise"' },
      });
    }
    const version = req.headers.get("mcp-protocol-version");
    if (version && !spoken.has(version)) {
      spoken.add(version);
      console.error(`supervise: a client speaks MCP ${version.slice(0, 40)}`);
    }
    try {
      return await mcp.fetch(req);
    } catch (err) {
      console.error(`supervise: ${(err as Error).message}`);
      return new Response("supervise error\n", { status: 500 });
    }
  };
  const servers: Deno.HttpServer[] = [
    Deno.serve({
      hostname: cfg.listen.host,
      port: cfg.listen.port,
      onListen: (a) => console.error(`supervise: listening on ${a.hostname}:${a.port}`),
    }, handler),
  ];
  if (cfg.listen.socket) {
    await Deno.remove(cfg.listen.socket).catch(() => {});
    servers.push(Deno.serve({ path: cfg.listen.socket, onListen: () => {} }, handler));
    // The agent's forwarder connects as another user.
    for (let n = 0; n < 100 && !(await exists(cfg.listen.socket)); n++) await sleep(10);
    await Deno.chmod(cfg.listen.socket, 0o666);
  }
  await new Promise<void>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, resolve);
  });
  await Promise.all(servers.map((s) => s.shutdown()));
  audit.close();
  return 0;
}

function hasBearer(req: Request, token: string): boolean {
  const m = /^Bearer (\S+)$/.exec(req.headers.get("authorization") ?? "");
  if (!m) return false;
  const given = new TextEncoder().encode(m[1]!);
  const want = new TextEncoder().encode(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

function exists(path: string): Promise<boolean> {
  return Deno.stat(path).then(() => true, () => false);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
