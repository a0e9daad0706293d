/**
 * What Claude Code calls the supervise daemon and its tools: the plan gives
 * them to `--allowedTools` and `--permission-prompt-tool` (MCP tools are
 * named `mcp__<server>__<tool>`), the daemon registers them.
 */
export const SUPERVISE_SERVER = "supervise";

export const TOOLS = {
  approval: "request_approval",
  question: "ask_human",
  permission: "permission_prompt",
} as const;

export function claudeToolName(tool: string): string {
  return `mcp__${SUPERVISE_SERVER}__${tool}`;
}
