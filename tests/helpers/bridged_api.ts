/** The scripted Anthropic API where a bottle's bundle reaches it: on the docker0 bridge, trusted by its CA. */
import { type AnthropicApi, startAnthropicApi } from "../fakes/anthropic_api.ts";
import { interfaceAddress } from "./bottle_env.ts";

export const API_HOST = "anthropic.test";

/** The fake on the docker0 bridge, and the env that makes the bundle reach and trust it. */
export async function bridgedApi(): Promise<{ api: AnthropicApi; env: Record<string, string> }> {
  const api = await startAnthropicApi({ names: [API_HOST], hostname: interfaceAddress("docker0") });
  return {
    api,
    env: {
      BOTTLE_BUNDLE_ADD_HOSTS: `${API_HOST}:host-gateway`,
      BOTTLE_UPSTREAM_CA_CERTS: api.caFile,
    },
  };
}
