/**
 * The Anthropic credential as a route: the bottle sees a placeholder, egress
 * injects the real API key (`x-api-key`) or OAuth token (`Authorization:
 * Bearer`) on the way out.
 */
import { type AgentDefinition, ANTHROPIC_API_HOST } from "../config/schema.ts";
import type { RoutePlan } from "./plan_types.ts";

const HOST = ANTHROPIC_API_HOST;

export function anthropicRoute(
  setting: AgentDefinition["anthropic"],
  hostEnvNames: ReadonlySet<string>,
  valueEnv: string,
): { route?: RoutePlan; warning?: string } {
  if (setting === "none") return {};
  if (setting === "auto") {
    if (hostEnvNames.has("ANTHROPIC_API_KEY")) {
      return { route: apiKey({ env: "ANTHROPIC_API_KEY" }, valueEnv) };
    }
    if (hostEnvNames.has("CLAUDE_CODE_OAUTH_TOKEN")) {
      return { route: oauth({ env: "CLAUDE_CODE_OAUTH_TOKEN" }, valueEnv) };
    }
    return {
      warning:
        "No Anthropic credential on the host (set ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN): claude will have to log in inside the bottle",
    };
  }
  if (setting.api_key) return { route: apiKey(setting.api_key, valueEnv) };
  if (setting.oauth_token) return { route: oauth(setting.oauth_token, valueEnv) };
  return {};
}

function apiKey(source: RoutePlan["source"], valueEnv: string): RoutePlan {
  return {
    host: HOST,
    header: "x-api-key",
    template: "{value}",
    valueEnv,
    source,
    placeholderEnv: "ANTHROPIC_API_KEY",
  };
}

function oauth(source: RoutePlan["source"], valueEnv: string): RoutePlan {
  return {
    host: HOST,
    header: "Authorization",
    template: "Bearer {value}",
    valueEnv,
    source,
    placeholderEnv: "CLAUDE_CODE_OAUTH_TOKEN",
  };
}
