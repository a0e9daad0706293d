/**
 * The host files a plan names, checked before anything starts: `plan` runs
 * this too, so it fails exactly as `start` would (exit 2, the file named)
 * instead of `start` failing after containers exist.
 */
import { join } from "node:path";
import type { Plan } from "./plan_types.ts";
import { UserError } from "../errors.ts";

export async function checkPlanInputs(plan: Plan, origin: string): Promise<void> {
  const where = `agent "${plan.bottle.agent}" (${origin})`;
  const img = plan.images.agent;
  if (img.source === "dockerfile") {
    await expect(img.dockerfile!, "file", `${where}: image.dockerfile`);
    await expect(img.context!, "dir", `${where}: image.context`);
  }
  for (const step of plan.provision) {
    if (step.step === "prompt" && step.file) {
      await expect(step.file, "file", `${where}: prompt_file`);
    }
    if (step.step === "skills") {
      for (const dir of step.dirs) {
        await expect(dir, "dir", `${where}: skills`);
        await expect(
          join(dir, "SKILL.md"),
          "file",
          `${where}: skills (every skill needs a SKILL.md)`,
        );
      }
    }
  }
  for (const m of plan.agent.container?.mounts ?? []) {
    await expect(m.source, "any", `${where}: mounts[].source`);
  }
}

async function expect(path: string, kind: "file" | "dir" | "any", field: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound ? "does not exist" : (err as Error).message;
    throw new UserError(`${field}: "${path}" ${why}`);
  }
  if (kind === "file" && !info.isFile) throw new UserError(`${field}: "${path}" is not a file`);
  if (kind === "dir" && !info.isDirectory) {
    throw new UserError(`${field}: "${path}" is not a directory`);
  }
}
