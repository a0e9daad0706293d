/**
 * The Anthropic credential as a route: the bottle sees a placeholder, egress
 * injects the real API key (`x-api-key`) or OAuth token (`Authorization:
 * Bearer`) on the way out, to the API host the agent file names (the
 * default, or an LLM gateway's `base_url`).
 */
import {
  type AgentDefinition,
  anthropicBaseUrlOf,
  anthropicEndpoint,
  type secretSource,
} from "../config/schema.ts";
import type { RoutePlan } from "./plan_types.ts";
import { parseRouteHost } from "../bundle/egress/routes.ts";
import type { z } from "zod";

type Source = z.infer<typeof secretSource>;

export interface AnthropicPlan {
  /** The API's URL, given to Claude Code as ANTHROPIC_BASE_URL; absent for `none`. */
  baseUrl?: string;
  /** The API's host name, allowlisted with or without a credential. */
  apiHost?: string;
  route?: RoutePlan;
  warning?: string;
}

export function anthropicPlan(
  setting: AgentDefinition["anthropic"],
  hostEnvNames: ReadonlySet<string>,
  valueEnv: string,
): AnthropicPlan {
  if (setting === "none") return {};
  const { routeHost, url } = anthropicEndpoint(anthropicBaseUrlOf(setting));
  const plan = (p: Omit<AnthropicPlan, "baseUrl" | "apiHost">): AnthropicPlan => ({
    baseUrl: url,
    apiHost: parseRouteHost(routeHost).name,
    ...p,
  });
  const explicit = typeof setting === "object" ? setting : {};
  if (explicit.api_key) {
    return { baseUrl: url, route: apiKey(routeHost, explicit.api_key, valueEnv) };
  }
  if (explicit.oauth_token) {
    return { baseUrl: url, route: oauth(routeHost, explicit.oauth_token, valueEnv) };
  }
  // "auto", or an object naming only the base URL: look the credential up on the host.
  if (hostEnvNames.has("ANTHROPIC_API_KEY")) {
    return plan({ route: apiKey(routeHost, { env: "ANTHROPIC_API_KEY" }, valueEnv) });
  }
  if (hostEnvNames.has("CLAUDE_CODE_OAUTH_TOKEN")) {
    return plan({ route: oauth(routeHost, { env: "CLAUDE_CODE_OAUTH_TOKEN" }, valueEnv) });
  }
  return plan({
    warning:
      "No Anthropic credential on the host (set ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN): claude will have to log in inside the bottle",
  });
}

function apiKey(host: string, source: Source, valueEnv: string): RoutePlan {
  return {
    host,
    header: "x-api-key",
    template: "{value}",
    valueEnv,
    source,
    placeholderEnv: "ANTHROPIC_API_KEY",
  };
}

function oauth(host: string, source: Source, valueEnv: string): RoutePlan {
  return {
    host,
    header: "Authorization",
    template: "Bearer {value}",
    valueEnv,
    source,
    placeholderEnv: "CLAUDE_CODE_OAUTH_TOKEN",
  };
}

/**
 * Placeholders are shaped like the real thing (prefix, length, the `AA`
 * tail of Anthropic keys and tokens: 108 characters) because clients check
 * the shape, but inert: egress replaces them outside the bottle.
 */
export function placeholderFor(envName: string): string {
  const prefix = envName === "ANTHROPIC_API_KEY"
    ? "sk-ant-api03-"
    : envName === "CLAUDE_CODE_OAUTH_TOKEN"
    ? "sk-ant-oat01-"
    : undefined;
  if (!prefix) return "bottle-placeholder";
  const body = "bottle-placeholder-";
  return prefix + body + "0".repeat(108 - prefix.length - body.length - 2) + "AA";
}
