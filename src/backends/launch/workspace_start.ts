/**
 * Where each of the gate's upstreams starts, found at launch: for the host
 * repository, its checked-out branch at HEAD, or at one extra commit that
 * carries the uncommitted changes (git/carry_changes.ts). The repository is
 * looked up again, and must still be the one the plan named.
 */
import type { Plan } from "../../plan/plan_types.ts";
import type { GateStarts } from "../../bundle/bundle_files.ts";
import { findHostRepo } from "../../git/host_repo.ts";
import { startingPoint } from "../../git/carry_changes.ts";
import { UserError } from "../../errors.ts";
import { makeLandingDir } from "../../git/landing_dir.ts";
import { attachLandingStore } from "../../git/landing_store.ts";

export async function gateStarts(plan: Plan): Promise<GateStarts> {
  const starts: GateStarts = {};
  for (const u of plan.bundle.gitGate?.upstreams ?? []) {
    if (u.kind !== "host") continue;
    const root = plan.workspace.hostPath;
    const repo = root ? await findHostRepo(root) : undefined;
    if (!repo || repo.gitDir !== u.hostGitDir) {
      throw new UserError(`The repository at ${root} changed since the plan was made: start again`);
    }
    if (u.transport === "mount") await makeLandingDir(u.hostGitDir, u.landingPrefix);
    if (u.landingStore) await attachLandingStore(u.hostGitDir, u.landingStore.dir);
    const point = u.carryChanges
      ? await startingPoint(repo)
      : { ...(repo.head ? { commit: repo.head } : {}), carried: false };
    starts[u.name] = { ...(repo.branch ? { branch: repo.branch } : {}), ...point };
  }
  return starts;
}
