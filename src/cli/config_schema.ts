/** `bottle config schema`: the agent file's JSON Schema, for editor completion. */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";

export async function agentFileJsonSchema(): Promise<Record<string, unknown>> {
  const [{ z }, { agentFile }] = await Promise.all([import("zod"), import("../config/schema.ts")]);
  return {
    ...z.toJSONSchema(agentFile, { io: "input", unrepresentable: "any" }),
    title: "bottle agent file",
  };
}

export function registerConfig(program: Command, ctx: CliContext): void {
  const config = program.command("config").description("Agent file helpers");
  config.command("schema")
    .description("Print the JSON Schema of the agent file (bottle.yaml)")
    .action(async () => ctx.out(JSON.stringify(await agentFileJsonSchema(), null, 2)));
}
