import { Option } from "commander";
import type { Backend } from "../plan/plan_types.ts";
import type { WorkspaceMode } from "../config/schema.ts";

export interface BackendOption {
  backend?: Backend;
  workspace?: WorkspaceMode;
}

/** `--backend docker|smolmachines`, overriding the agent definition's choice. */
export function backendOption(): Option {
  return new Option("--backend <backend>", "where the agent runs (default: the agent's)").choices([
    "docker",
    "smolmachines",
  ]);
}

/** `--workspace git|mount|none`, overriding the agent definition's choice. */
export function workspaceOption(): Option {
  return new Option(
    "--workspace <mode>",
    "what /workspace holds: git (this repository, through the git gate), mount (this directory, read-write) or none",
  ).choices(["git", "mount", "none"]);
}
