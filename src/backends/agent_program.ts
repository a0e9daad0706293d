/** The agent program's argv inside the bottle: the definition's command, plus the prompt file when there is one. */
import type { Plan } from "../plan/plan_types.ts";

export function agentProgram(plan: Plan): string[] {
  const prompt = plan.provision.find((s) => s.step === "prompt");
  const isClaude = plan.agent.command[0] === "claude";
  return prompt && isClaude
    ? [...plan.agent.command, "--append-system-prompt-file", prompt.guestPath]
    : plan.agent.command;
}
