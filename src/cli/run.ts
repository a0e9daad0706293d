/**
 * `bottle run [agent] -- PROMPT...`: one headless task. Starts a bottle,
 * runs `claude -p PROMPT` with its output on this terminal, tears the
 * bottle down, and exits with Claude Code's exit code.
 */
import { type Command, Option } from "commander";
import type { CliContext } from "./context.ts";
import { backendOption, workspaceOption } from "./backend_option.ts";
import { collect, type LaunchOptions, startBottle } from "./start.ts";
import { SilentExit } from "../errors.ts";
import { afterDashes, agentAndPrompt } from "./prompt_args.ts";
import { headlessPlan, OUTPUT_FORMATS } from "../plan/headless.ts";

export function registerRun(program: Command, ctx: CliContext): void {
  program.command("run")
    .description("Run claude -p PROMPT in a new bottle, then remove the bottle")
    .argument("[agent]", "agent name (default: claude)")
    .argument("[prompt...]", "the prompt (put it after --)")
    .addOption(backendOption())
    .addOption(workspaceOption())
    .option("--name <suffix>", "bottle name suffix (default: random)")
    .option("--fresh", "run Claude Code with an empty home (its kept settings and history stay)")
    .addOption(
      new Option("--output-format <format>", "claude's output format").choices(OUTPUT_FORMATS),
    )
    .option("--allowed-tools <tool>", "a tool claude may use unasked (repeatable)", collect, [])
    .option("--permission-mode <mode>", "claude's permission mode")
    .option("--build-ca <file>", "extra CA certificate for image builds (repeatable)", collect, [])
    .action(async (
      first: string | undefined,
      rest: string[],
      opts: LaunchOptions & {
        outputFormat?: string;
        allowedTools: string[];
        permissionMode?: string;
      },
    ) => {
      const { agentName, prompt } = agentAndPrompt(
        [...(first === undefined ? [] : [first]), ...rest],
        afterDashes(ctx.argv ?? []),
      );
      const code = await startBottle(ctx, program, agentName, opts, {
        detach: false,
        session: (plan) =>
          headlessPlan(plan, {
            prompt,
            ...(opts.outputFormat ? { outputFormat: opts.outputFormat } : {}),
            allowedTools: opts.allowedTools,
            ...(opts.permissionMode ? { permissionMode: opts.permissionMode } : {}),
          }),
      });
      if (code !== 0) throw new SilentExit(code);
    });
}
