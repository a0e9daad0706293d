/** `bottle config schema`: the agent file's JSON Schema, for editor completion. */
import type { Command } from "commander";
import { z } from "zod";
import { agentFile } from "../config/schema.ts";
import type { CliContext } from "./context.ts";

export function agentFileJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(agentFile, { io: "input", unrepresentable: "any" }),
    title: "bottle agent file",
  };
}

export function registerConfig(program: Command, ctx: CliContext): void {
  const config = program.command("config").description("Agent file helpers");
  config.command("schema")
    .description("Print the JSON Schema of the agent file (bottle.yaml)")
    .action(() => ctx.out(JSON.stringify(agentFileJsonSchema(), null, 2)));
}
