/**
 * The gate's rules for one ref update, as pure functions: what a push may
 * create or move, decided before anything is written. The hook gathers the
 * facts (is the update a fast-forward, how big is the push) and asks here.
 */
import type { GatePolicyPlan } from "../../plan/plan_types.ts";

export interface RefUpdate {
  old: string;
  new: string;
  ref: string;
}

/** A rule a push broke, named as the agent sees it in `remote:` lines and the audit log. */
export interface Violation {
  rule:
    | "deletion"
    | "namespace"
    | "tags"
    | "branch-pattern"
    | "non-fast-forward"
    | "size"
    | "secret"
    | "hook"
    | "foreign-object"
    | "landing";
  ref?: string;
  message: string;
}

const ZERO = /^0+$/;
export const isZero = (oid: string): boolean => ZERO.test(oid);

/** `* ` matches any run of characters, `/` included; everything else is literal. */
export function branchMatches(pattern: string, branch: string): boolean {
  const re = pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return new RegExp(`^${re}$`).test(branch);
}

/**
 * The rule `u` breaks, if any. `fastForward` says whether `u.new` descends
 * from `u.old` (asked only for updates of existing branches).
 */
export function refViolation(
  u: RefUpdate,
  policy: GatePolicyPlan,
  fastForward: boolean | undefined,
): Violation | undefined {
  const ref = u.ref;
  if (isZero(u.new)) {
    return { rule: "deletion", ref, message: `${ref}: deleting refs is not allowed` };
  }
  if (ref.startsWith("refs/tags/")) {
    if (!policy.allowTags) {
      return { rule: "tags", ref, message: `${ref}: pushing tags is not allowed` };
    }
    if (!isZero(u.old)) {
      return { rule: "tags", ref, message: `${ref}: an existing tag cannot be moved` };
    }
    return undefined;
  }
  if (!ref.startsWith("refs/heads/")) {
    return {
      rule: "namespace",
      ref,
      message: `${ref}: only branches (refs/heads/)${
        policy.allowTags ? " and tags" : ""
      } can be pushed`,
    };
  }
  const branch = ref.slice("refs/heads/".length);
  if (!policy.branches.some((p) => branchMatches(p, branch))) {
    return {
      rule: "branch-pattern",
      ref,
      message: `${ref}: branch "${branch}" matches none of ${policy.branches.join(", ")}`,
    };
  }
  if (!isZero(u.old) && fastForward === false) {
    return {
      rule: "non-fast-forward",
      ref,
      message: `${ref}: not a fast-forward of ${u.old.slice(0, 12)} (force pushes are not allowed)`,
    };
  }
  return undefined;
}

export function sizeViolation(bytes: number, policy: GatePolicyPlan): Violation | undefined {
  if (bytes <= policy.maxPushBytes) return undefined;
  return {
    rule: "size",
    message: `the push adds ${mib(bytes)} of objects, more than the limit of ${
      mib(policy.maxPushBytes)
    }`,
  };
}

function mib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`;
}
