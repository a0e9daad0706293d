/**
 * The built-in default agent, `claude`: what `bottle start` runs with no
 * agent file at all. Written as an agent file and parsed through the same
 * schema, so it can never drift from what users may write.
 */
import { parseAgentFile } from "./load.ts";
import type { AgentDefinition } from "./schema.ts";

export const BUILTIN_ORIGIN = "built-in";

const BUILTIN_YAML = `
version: 1
agents:
  claude:
    description: Claude Code with the Anthropic credential injected outside the bottle
    command: [claude]
    anthropic: auto
`;

export function builtinAgents(): Record<string, AgentDefinition> {
  return parseAgentFile(BUILTIN_YAML, BUILTIN_ORIGIN).agents;
}
