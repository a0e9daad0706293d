/**
 * The engines and bottles of this invocation. Loaded on demand by the
 * commands that drive a runtime, so that `bottle version` or `--help` never
 * pay for loading them.
 */
import type { CliContext } from "./context.ts";
import type { Bottles } from "../backends/bottles.ts";
import type { Engines } from "../backends/engines.ts";

export async function enginesOf(ctx: CliContext): Promise<Engines> {
  const { enginesFrom } = await import("../backends/engines.ts");
  return enginesFrom(ctx.env);
}

export async function bottlesOf(ctx: CliContext): Promise<Bottles> {
  const { Bottles } = await import("../backends/bottles.ts");
  return new Bottles(await enginesOf(ctx), ctx.dirs.state);
}
