/**
 * The plan: everything a launch will do, as pure data. `bottle plan --json`
 * prints exactly this object (see README, "Plan output"), so its shape is a
 * public, versioned contract: add fields freely, never rename or repurpose.
 * Secrets appear only as references to where their value lives on the host.
 */
import type { SecretSource } from "../config/schema.ts";

export const PLAN_SCHEMA = "bottle.plan/v1";

export type Backend = "docker" | "smolmachines";
export type Daemon = "egress" | "pipelock" | "git-gate" | "supervise";

/** A secret as the plan shows it: where it comes from, never what it is. */
export type SecretRef = SecretSource;

export interface ImagePlan {
  /** Built-in image (shipped with bottle) or the user's Dockerfile. */
  source: "builtin" | "dockerfile";
  /** Repository part of the tag; the tag itself is the build context's hash, known at build time. */
  repository: string;
  dockerfile?: string;
  context?: string;
  buildArgs: Record<string, string>;
}

export interface NetworkPlan {
  name: string;
  /** `--internal`: no route out of the host, only to peers on the network. */
  internal: boolean;
  /** Subnets are assigned by the engine from its address pools, which keeps concurrent bottles apart. */
  subnet: "engine-assigned";
  labels: Record<string, string>;
}

export interface RoutePlan {
  host: string;
  header: string;
  template: string;
  /** Env var of the egress daemon that carries the value (set from `source` at launch). */
  valueEnv: string;
  source: SecretRef;
  placeholderEnv?: string;
}

export interface MountPlan {
  source: string;
  target: string;
  readonly: boolean;
}

export type ProvisionStep =
  | { step: "ca-trust"; guestPath: string }
  | { step: "prompt"; guestPath: string; text?: string; file?: string }
  | { step: "skills"; dirs: string[]; guestDir: string };

export interface Plan {
  schema: typeof PLAN_SCHEMA;
  bottle: {
    name: string;
    agent: string;
    origin: string;
    backend: Backend;
    stateDir: string;
  };
  labels: Record<string, string>;
  images: { agent: ImagePlan; bundle: ImagePlan };
  networks: { internal: NetworkPlan; outbound: NetworkPlan };
  bundle: {
    container: string;
    /** The name the agent reaches the bundle by on the internal network. */
    alias: string;
    daemons: Daemon[];
    /** Agent-facing ports (on the internal network) and bundle-loopback ones. */
    ports: {
      egress: number;
      pipelock: number;
      health: number;
      gitGate?: number;
      supervise?: number;
    };
    allowlist: string[];
    routes: RoutePlan[];
    labels: Record<string, string>;
  };
  agent: {
    container: string;
    user: string;
    home: string;
    workdir: string;
    command: string[];
    /** Non-secret environment of the agent; credentials only as placeholders. */
    env: Record<string, string>;
    resources: { cpus?: number; memory?: string; pids: number };
    mounts: MountPlan[];
    security: { capDrop: string[]; noNewPrivileges: boolean };
    labels: Record<string, string>;
  };
  /**
   * smolmachines only: the microVM. Its egress policy allows the bundle's
   * address alone (known at launch), so the proxy URLs in `agent.env` name
   * the bundle by `bundle.alias` and the launcher substitutes the address.
   */
  vm?: { machine: string; cpus?: number; memoryMib?: number };
  provision: ProvisionStep[];
  warnings: string[];
}
