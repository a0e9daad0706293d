/**
 * The agent's proxy variables with the bottle's proxy credential in them:
 * `http://bottle:<token>@127.0.0.1:9000` in each of `agent.proxy.env`. Made
 * at launch, once the token exists; curl, git (libcurl), npm and Claude
 * Code all take a proxy credential from the URL.
 */
import type { AgentProxyPlan } from "./plan_types.ts";

export function proxyEnv(proxy: AgentProxyPlan, token: string): Record<string, string> {
  const url = new URL(proxy.url);
  url.username = proxy.user;
  url.password = token;
  // URL.href adds a trailing slash; proxy URLs are written without one.
  const value = url.href.replace(/\/$/, "");
  return Object.fromEntries(proxy.env.map((name) => [name, value]));
}
