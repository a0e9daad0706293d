/** Gathers the host facts a plan depends on: the only impure step before planning. */
import { hostname } from "node:os";
import type { Backend } from "./plan_types.ts";
import type { HostFacts } from "./make_plan.ts";
import type { CliContext } from "../cli/context.ts";
import { UserError } from "../errors.ts";

const SUFFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

export function hostFacts(
  ctx: Pick<CliContext, "env" | "dirs">,
  opts: { backend?: Backend; name?: string },
): HostFacts {
  if (opts.name !== undefined && !/^[a-z0-9][a-z0-9-]{0,15}$/.test(opts.name)) {
    throw new UserError(
      `Invalid --name "${opts.name}": expected up to 16 lowercase letters, digits or "-"`,
    );
  }
  return {
    suffix: opts.name ?? randomSuffix(),
    stateRoot: ctx.dirs.state,
    ownerHost: hostname(),
    ownerPid: Deno.pid,
    hostEnvNames: new Set(Object.keys(ctx.env).filter((k) => ctx.env[k])),
    ...(opts.backend ? { backend: opts.backend } : {}),
  };
}

function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return [...bytes].map((b) => SUFFIX_ALPHABET[b % SUFFIX_ALPHABET.length]).join("");
}
