/**
 * Reads secret values from where an agent definition says they live (host
 * env var, file, or a command's stdout). Only ever called at launch; every
 * value is registered for redaction the moment it is read.
 */
import { homedir } from "node:os";
import { isAbsolute, resolve } from "node:path";
import type { SecretSource } from "../config/schema.ts";
import { UserError } from "../errors.ts";
import { CommandError, run } from "../proc/runner.ts";
import { registerSecret } from "../proc/secrets.ts";

export interface SecretContext {
  env: Record<string, string | undefined>;
  /** Relative `file:` paths resolve against the agent file's directory. */
  baseDir: string;
  /** Says which secret is meant in errors, e.g. `route "api.github.com"`. */
  what: string;
}

export async function resolveSecret(source: SecretSource, ctx: SecretContext): Promise<string> {
  const value = await read(source, ctx);
  if (value === "") {
    throw new UserError(`Secret for ${ctx.what} is empty (${describeSource(source)})`);
  }
  registerSecret(value);
  return value;
}

async function read(source: SecretSource, ctx: SecretContext): Promise<string> {
  if (source.env !== undefined) {
    const v = ctx.env[source.env];
    if (v === undefined) {
      throw new UserError(
        `Secret for ${ctx.what}: host environment variable "${source.env}" is not set`,
      );
    }
    return v;
  }
  if (source.file !== undefined) {
    const path = expandPath(source.file, ctx.baseDir);
    try {
      return (await Deno.readTextFile(path)).replace(/\r?\n$/, "");
    } catch (err) {
      throw new UserError(
        `Secret for ${ctx.what}: cannot read file "${path}": ${(err as Error).message}`,
      );
    }
  }
  if (source.command !== undefined) {
    try {
      const r = await run(source.command, { cwd: ctx.baseDir, timeoutMs: 30_000 });
      return r.stdout.replace(/\r?\n$/, "");
    } catch (err) {
      const why = err instanceof CommandError ? err.message : (err as Error).message;
      throw new UserError(`Secret for ${ctx.what}: ${why}`);
    }
  }
  throw new UserError(`Secret for ${ctx.what} has no source`);
}

/** `~/x` and relative paths, as users write them in agent files. */
export function expandPath(p: string, baseDir: string): string {
  if (p === "~" || p.startsWith("~/")) return resolve(homedir(), p.slice(2));
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

export function describeSource(s: SecretSource): string {
  if (s.env !== undefined) return `env ${s.env}`;
  if (s.file !== undefined) return `file ${s.file}`;
  return `command ${JSON.stringify(s.command)}`;
}

/**
 * Why a secret could not be read at launch, found without reading it (an
 * unset variable, a file that is not there or not readable); commands are
 * not run. `plan` warns with this what `start` would refuse.
 */
export async function secretSourceProblem(
  source: SecretSource,
  ctx: Omit<SecretContext, "what">,
): Promise<string | undefined> {
  if (source.env !== undefined) {
    return ctx.env[source.env] ? undefined : `host environment variable "${source.env}" is not set`;
  }
  if (source.file !== undefined) {
    const path = expandPath(source.file, ctx.baseDir);
    try {
      (await Deno.open(path, { read: true })).close();
      return undefined;
    } catch (err) {
      return `cannot read file "${path}": ${(err as Error).message}`;
    }
  }
  return undefined;
}
