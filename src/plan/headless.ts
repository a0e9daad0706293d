/**
 * `bottle run`'s session: the plan `start` would carry out, with Claude
 * Code run once on a prompt (`claude -p`) instead of on the terminal.
 * Pure, like the plan it changes.
 */
import { UserError } from "../errors.ts";
import type { Plan } from "./plan_types.ts";

export interface HeadlessRun {
  prompt: string;
  /** `text`, `json` or `stream-json` (claude's `--output-format`). */
  outputFormat?: string;
  /** claude's `--allowedTools`. */
  allowedTools?: string[];
  /** claude's `--permission-mode`. */
  permissionMode?: string;
}

export const OUTPUT_FORMATS = ["text", "json", "stream-json"] as const;

export function headlessPlan(plan: Plan, run: HeadlessRun): Plan {
  const [program = ""] = plan.agent.program;
  if (program.split("/").pop() !== "claude") {
    throw new UserError(
      `bottle run runs claude -p, but agent "${plan.bottle.agent}" runs ${
        JSON.stringify(program)
      }: use bottle start, or bottle exec on a detached bottle`,
    );
  }
  if (run.prompt.trim() === "") throw new UserError("bottle run: the prompt is empty");
  const format = run.outputFormat;
  if (format !== undefined && !(OUTPUT_FORMATS as readonly string[]).includes(format)) {
    throw new UserError(
      `bottle run: --output-format must be one of ${OUTPUT_FORMATS.join(", ")}, got ${
        JSON.stringify(format)
      }`,
    );
  }
  const argv = [
    ...plan.agent.program,
    "--print",
    ...(format ? ["--output-format", format] : []),
    // claude refuses stream-json output under --print without --verbose.
    ...(format === "stream-json" ? ["--verbose"] : []),
    ...(run.allowedTools?.length ? ["--allowedTools", run.allowedTools.join(",")] : []),
    ...(run.permissionMode ? ["--permission-mode", run.permissionMode] : []),
    // With supervise, the human answers each permission prompt from the host.
    ...(plan.agent.permissionPromptTool
      ? ["--permission-prompt-tool", plan.agent.permissionPromptTool]
      : []),
    // After "--", a prompt that starts with "-" is not taken for an option.
    "--",
    run.prompt,
  ];
  return {
    ...plan,
    agent: { ...plan.agent, program: argv, session: "headless", attachProgram: plan.agent.program },
  };
}
