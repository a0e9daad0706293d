/**
 * config -> plan: a pure function of the agent definition and a few host
 * facts. No I/O, no clock, no randomness: the caller passes the bottle's
 * unique suffix, so the same inputs always give the same plan.
 */
import { isAbsolute, join, resolve } from "node:path";
import type { LoadedAgent } from "../config/discover.ts";
import type { AgentDefinition } from "../config/schema.ts";
import * as L from "../labels.ts";
import {
  type Backend,
  type Daemon,
  type Plan,
  PLAN_SCHEMA,
  type ProvisionStep,
  type RoutePlan,
} from "./plan_types.ts";
import { anthropicRoute } from "./anthropic.ts";

export interface HostFacts {
  /** Unique per launch (random): makes concurrent bottles of one agent distinct. */
  suffix: string;
  /** Root of per-bottle state dirs. */
  stateRoot: string;
  ownerHost: string;
  ownerPid: number;
  /** Names (not values) of the host environment variables that are set. */
  hostEnvNames: ReadonlySet<string>;
  backend?: Backend;
}

export const PORTS = { egress: 3128, pipelock: 8888, health: 9099, gitGate: 8080, supervise: 8090 };
export const BUNDLE_ALIAS = "bundle";
const AGENT_USER = "agent";
const AGENT_HOME = "/home/agent";
const DEFAULT_PIDS = 1024;
/** Hosts Claude Code itself needs, allowed whenever the agent program is claude. */
const CLAUDE_DOMAINS = ["api.anthropic.com", "statsig.anthropic.com", "console.anthropic.com"];
const CA_GUEST_PATH = "/usr/local/share/ca-certificates/bottle.crt";
/**
 * The system trust bundle (Debian layout) the bottle's CAs are appended to:
 * what update-ca-certificates would produce, in one write instead of a
 * rehash of every certificate (seconds per launch).
 */
export const SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

export function makePlan(agent: LoadedAgent, facts: HostFacts): Plan {
  const def = agent.definition;
  const backend = facts.backend ?? def.backend;
  const name = `${agent.name}-${facts.suffix}`;
  const prefix = `bottle-${name}`;
  const warnings: string[] = [];

  const baseLabels: Record<string, string> = {
    [L.MANAGED]: "true",
    [L.BOTTLE_ID]: name,
    [L.AGENT]: agent.name,
    [L.BACKEND]: backend,
    [L.OWNER_HOST]: facts.ownerHost,
    [L.OWNER_PID]: String(facts.ownerPid),
  };

  const routes: RoutePlan[] = def.routes.map((r, i) => ({
    host: r.host,
    header: r.header,
    template: r.template,
    valueEnv: `BOTTLE_ROUTE_${i}`,
    source: r.value,
    ...(r.placeholder_env ? { placeholderEnv: r.placeholder_env } : {}),
  }));
  const anthropic = anthropicRoute(
    def.anthropic,
    facts.hostEnvNames,
    `BOTTLE_ROUTE_${routes.length}`,
  );
  if (anthropic.route) routes.push(anthropic.route);
  if (anthropic.warning) warnings.push(anthropic.warning);

  const daemons: Daemon[] = ["egress", "pipelock"];
  if (def.git.length > 0) daemons.push("git-gate");
  if (def.supervise) daemons.push("supervise");

  const isClaude = def.command[0] === "claude";
  const allowlist = [
    ...new Set([
      ...(isClaude ? CLAUDE_DOMAINS : []),
      ...def.allowed_domains,
      ...routes.map((r) => r.host),
    ]),
  ].sort();

  const proxyUrl = `http://${BUNDLE_ALIAS}:${PORTS.egress}`;
  const env: Record<string, string> = {
    ...def.env,
    HTTPS_PROXY: proxyUrl,
    HTTP_PROXY: proxyUrl,
    https_proxy: proxyUrl,
    http_proxy: proxyUrl,
    NO_PROXY: `localhost,127.0.0.1,${BUNDLE_ALIAS}`,
    no_proxy: `localhost,127.0.0.1,${BUNDLE_ALIAS}`,
    NODE_EXTRA_CA_CERTS: CA_GUEST_PATH,
    HOME: AGENT_HOME,
  };
  for (const r of routes) {
    if (r.placeholderEnv) env[r.placeholderEnv] = placeholderFor(r.placeholderEnv);
  }

  const provision: ProvisionStep[] = [{ step: "ca-trust", guestPath: CA_GUEST_PATH }];
  if (def.prompt !== undefined || def.prompt_file !== undefined) {
    provision.push({
      step: "prompt",
      guestPath: `${AGENT_HOME}/.bottle/prompt.md`,
      ...(def.prompt !== undefined ? { text: def.prompt } : {}),
      ...(def.prompt_file !== undefined ? { file: resolve(agent.baseDir, def.prompt_file) } : {}),
    });
  }
  if (def.skills.length > 0) {
    provision.push({
      step: "skills",
      dirs: def.skills.map((d) => resolve(agent.baseDir, d)),
      guestDir: `${AGENT_HOME}/.claude/skills`,
    });
  }

  return {
    schema: PLAN_SCHEMA,
    bottle: {
      name,
      agent: agent.name,
      origin: agent.origin,
      backend,
      stateDir: join(facts.stateRoot, "bottles", name),
    },
    labels: baseLabels,
    images: {
      agent: agentImage(agent, def),
      bundle: { source: "builtin", repository: "bottle/bundle", buildArgs: {} },
    },
    networks: {
      internal: {
        name: `${prefix}-internal`,
        internal: true,
        subnet: "engine-assigned",
        labels: L.objectLabels(baseLabels, "internal-net"),
      },
      outbound: {
        name: `${prefix}-outbound`,
        internal: false,
        subnet: "engine-assigned",
        labels: L.objectLabels(baseLabels, "outbound-net"),
      },
    },
    bundle: {
      container: `${prefix}-bundle`,
      alias: BUNDLE_ALIAS,
      daemons,
      ports: {
        egress: PORTS.egress,
        pipelock: PORTS.pipelock,
        health: PORTS.health,
        ...(daemons.includes("git-gate") ? { gitGate: PORTS.gitGate } : {}),
        ...(daemons.includes("supervise") ? { supervise: PORTS.supervise } : {}),
      },
      allowlist,
      routes,
      labels: L.objectLabels(baseLabels, "bundle"),
    },
    agent: {
      container: `${prefix}-agent`,
      user: AGENT_USER,
      home: AGENT_HOME,
      workdir: "/workspace",
      command: def.command,
      env: sortKeys(env),
      resources: {
        ...(def.resources.cpus !== undefined ? { cpus: def.resources.cpus } : {}),
        ...(def.resources.memory !== undefined ? { memory: def.resources.memory } : {}),
        pids: def.resources.pids ?? DEFAULT_PIDS,
      },
      mounts: def.mounts.map((m) => ({
        source: isAbsolute(m.source) ? m.source : resolve(agent.baseDir, m.source),
        target: m.target,
        readonly: m.readonly,
      })),
      security: { capDrop: ["ALL"], noNewPrivileges: true },
      labels: L.objectLabels(baseLabels, "agent"),
    },
    ...(backend === "smolmachines" ? { vm: vmPlan(prefix, def) } : {}),
    provision,
    warnings,
  };
}

function vmPlan(prefix: string, def: AgentDefinition): NonNullable<Plan["vm"]> {
  const memoryMib = def.resources.memory !== undefined ? toMib(def.resources.memory) : undefined;
  return {
    machine: prefix,
    ...(def.resources.cpus !== undefined
      ? { cpus: Math.max(1, Math.ceil(def.resources.cpus)) }
      : {}),
    ...(memoryMib !== undefined ? { memoryMib } : {}),
  };
}

/** "4g" -> 4096, "512m" -> 512, "1048576k" -> 1024, plain bytes -> MiB. */
export function toMib(size: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)$/i.exec(size);
  if (!m) throw new Error(`Invalid size "${size}"`);
  const n = Number(m[1]);
  const unit = (m[2] ?? "").toLowerCase();
  const mib = unit === "g"
    ? n * 1024
    : unit === "m"
    ? n
    : unit === "k"
    ? n / 1024
    : n / 1024 / 1024;
  return Math.max(1, Math.round(mib));
}

function agentImage(agent: LoadedAgent, def: AgentDefinition): Plan["images"]["agent"] {
  if (!def.image) return { source: "builtin", repository: "bottle/agent", buildArgs: {} };
  const dockerfile = resolve(agent.baseDir, def.image.dockerfile);
  return {
    source: "dockerfile",
    repository: `bottle/agent-${agent.name}`,
    dockerfile,
    context: resolve(agent.baseDir, def.image.context ?? join(dockerfile, "..")),
    buildArgs: def.image.build_args,
  };
}

/**
 * Placeholders look like the real thing's format (some tools check the
 * prefix) but are inert: egress replaces them outside the bottle.
 */
export function placeholderFor(envName: string): string {
  if (envName === "ANTHROPIC_API_KEY") return "sk-ant-api03-bottle-placeholder";
  if (envName === "CLAUDE_CODE_OAUTH_TOKEN") return "sk-ant-oat01-bottle-placeholder";
  return "bottle-placeholder";
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}
