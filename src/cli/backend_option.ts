import { Option } from "commander";
import type { Backend } from "../plan/plan_types.ts";

export interface BackendOption {
  backend?: Backend;
}

/** `--backend docker|smolmachines`, overriding the agent definition's choice. */
export function backendOption(): Option {
  return new Option("--backend <backend>", "where the agent runs (default: the agent's)").choices([
    "docker",
    "smolmachines",
  ]);
}
