/** A prompt given on the command line after `--` (`run`, and `start --detach`). */
import { UserError } from "../errors.ts";

/**
 * `run -- fix it` (the default agent) or `run reviewer -- fix it`: the
 * prompt is what follows `--`, its words joined by spaces. Commander drops
 * the `--` from the operands, so the raw words after it tell where the
 * prompt starts.
 */
export function agentAndPrompt(
  operands: string[],
  afterDash: string[] | undefined,
  command = "run",
): { agentName: string; prompt: string } {
  if (afterDash === undefined) {
    throw new UserError(
      `bottle ${command}: put the prompt after "--": bottle ${command} [agent] -- PROMPT`,
    );
  }
  const before = operands.slice(0, operands.length - afterDash.length);
  if (before.length > 1) {
    throw new UserError(
      `bottle ${command}: one agent name before "--", got ${
        before.map((w) => JSON.stringify(w)).join(" ")
      }`,
    );
  }
  const prompt = afterDash.join(" ");
  if (prompt.trim() === "") throw new UserError(`bottle ${command}: missing prompt after --`);
  return { agentName: before[0] ?? "claude", prompt };
}

export function afterDashes(raw: readonly string[]): string[] | undefined {
  const i = raw.indexOf("--");
  return i < 0 ? undefined : raw.slice(i + 1);
}
