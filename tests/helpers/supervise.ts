/** What the supervise tests share: an MCP tool call from inside a bottle, and waiting for its request on the host. */
import { bottle } from "./bottle_env.ts";

/**
 * `bottle exec <bottle> -- curl …`: one MCP tools/call to the daemon at
 * `url`, as a 2025-era client sends it (stateless: no initialize needed).
 */
export function callFromBottle(
  name: string,
  env: Record<string, string>,
  url: string,
  tool: string,
  args: Record<string, unknown>,
  auth?: string,
) {
  const body = JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "tools/call",
    params: { name: tool, arguments: args },
  });
  return bottle([
    "exec",
    name,
    "--",
    "curl",
    "-s",
    "-H",
    "content-type: application/json",
    "-H",
    "accept: application/json, text/event-stream",
    "-H",
    "mcp-protocol-version: 2025-06-18",
    ...(auth ? ["-H", `authorization: ${auth}`] : []),
    "-d",
    body,
    url,
  ], env);
}

/** The id of the first request `bottle supervise --json` lists, once there is one (10 s at most). */
export async function firstPendingId(env: Record<string, string>): Promise<string> {
  let said = "";
  for (let i = 0; i < 50; i++) {
    const l = await bottle(["supervise", "--json"], env);
    if (l.code !== 0) throw new Error(`bottle supervise failed: ${l.stderr}`);
    said = l.stderr;
    const line = l.stdout.split("\n").find(Boolean);
    if (line) return (JSON.parse(line) as { id: string }).id;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`no request reached the queue: ${said}`);
}
