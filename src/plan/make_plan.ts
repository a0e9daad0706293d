/**
 * config -> plan: a pure function of the agent definition and a few host
 * facts. No I/O, no clock, no randomness: the caller passes the bottle's
 * unique suffix, so the same inputs always give the same plan. Every policy
 * decision of a launch is made here; the runtimes only carry it out.
 */
import { keptHomesDir } from "../state/dirs.ts";
import { createHash } from "node:crypto";
import { basename, isAbsolute, join, resolve } from "node:path";
import type { LoadedAgent } from "../config/discover.ts";
import type { AgentDefinition, WorkspaceMode } from "../config/schema.ts";
import type { HostRepo } from "../git/host_repo.ts";
import * as L from "../labels.ts";
import {
  type AgentProxyPlan,
  type Backend,
  BUNDLE_ADDRESS,
  type ContainerPlan,
  type Daemon,
  type ForwardPlan,
  type GateUpstreamPlan,
  type HostUpstreamPlan,
  type MountPlan,
  type Plan,
  PLAN_SCHEMA,
  type ProvisionStep,
  type RemoteUpstreamPlan,
  type RoutePlan,
  type SupervisePlan,
  type VmNetworkMode,
} from "./plan_types.ts";
import { anthropicPlan, placeholderFor } from "./anthropic.ts";
import {
  BUNDLE_CONFIG_DIR,
  BUNDLE_PORTS,
  BUNDLE_UID,
  EGRESS_SECRET_PREFIX,
  GATE_CONFIG_FILE,
  PIPELOCK_ROUTES_CONFIG,
  ROUTE_SECRET_PREFIX,
  SOCKETS_DIR,
} from "../bundle/init/bundle_manifest.ts";
import { UserError } from "../errors.ts";
import { landingDirs } from "../git/landing_dir.ts";
import { parseRouteHost } from "../bundle/egress/routes.ts";
import { durationSeconds } from "../config/schema.ts";
import { QUEUE_IN_BUNDLE } from "../bundle/supervise/queue_files.ts";
import { SUPERVISE_CONFIG_FILE } from "../bundle/supervise/supervise_config.ts";
import { claudeToolName, SUPERVISE_SERVER, TOOLS } from "../bundle/supervise/tool_names.ts";

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
  /** Extra /etc/hosts entries for the bundle (BOTTLE_BUNDLE_ADD_HOSTS), already checked. */
  bundleAddHosts?: string[];
  /** Extra upstream CA files for the bundle (BOTTLE_UPSTREAM_CA_CERTS), absolute paths. */
  upstreamCaFiles?: string[];
  /** The invocation's directory (what `workspace: mount` mounts). */
  cwd?: string;
  /** The repository `cwd` is in (absent outside one). */
  repo?: HostRepo;
  /** The host user's ids: the bundle runs as them when it writes to the host repository. */
  hostUser?: { uid: number; gid: number };
  /** False when the engine may not see this host's paths (DOCKER_HOST names another machine). */
  engineSharesFilesystem?: boolean;
  /** `--workspace`, overriding the agent file. */
  workspace?: WorkspaceMode;
  /** `--fresh`: the agent's kept home is not put back (it is still saved at the end). */
  freshHome?: boolean;
  /** The host user's home (where `~/.ssh/known_hosts` is). */
  homeDir?: string;
  /** The user's global git identity, for commits in clones of declared upstreams. */
  gitIdentity?: { name?: string; email?: string };
  /**
   * smolmachines: how the VM reaches the bundle (default `bundle-address`),
   * chosen from the engine's kind or BOTTLE_SMOLVM_NETWORK, and why.
   */
  vmNetwork?: { mode: VmNetworkMode; reason: string };
}

export const PORTS = BUNDLE_PORTS;
const AGENT_USER = "agent";
const WORKSPACE = "/workspace";
/** Where the bundle sees the host repository's git dir. */
export const HOST_REPO_IN_BUNDLE = "/run/bottle/host-repo";
/** Where a copied workspace's volume is in the bundle (its repository is `repo.git`). */
export const WORKSPACE_COPY_IN_BUNDLE = "/var/lib/bottle/workspace";
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
/** Where the forwarder is in the agent's run image (root-owned, out of the agent's reach). */
export const FORWARDER_IN_AGENT = "/usr/local/lib/bottle/bottle-forward";
/** The files of the bundle's config dir, sent on its stdin at start (see bundle/bundle_files.ts). */
export const BUNDLE_CONFIG_FILES = [
  "bundle.json",
  "egress.json",
  "pipelock.yaml",
  "egress-ca.pem",
  "egress-ca-key.pem",
  "pipelock-ca.pem",
  "pipelock-ca-key.pem",
];
/** The agent-facing daemons and the socket each serves in SOCKETS_DIR. */
const AGENT_FACING: Partial<Record<Daemon, { port: number; socket: string }>> = {
  egress: { port: PORTS.egress, socket: "egress.sock" },
  "git-gate": { port: PORTS.gitGate, socket: "git-gate.sock" },
  supervise: { port: PORTS.supervise, socket: "supervise.sock" },
};

export function makePlan(agent: LoadedAgent, facts: HostFacts): Plan {
  const def = agent.definition;
  const backend = facts.backend ?? def.backend;
  const vmAgent = backend === "smolmachines";
  // A VM on a routable engine reaches the bundle at its address; every
  // other agent on its own loopback, through the forwarder (a container's,
  // or a VM's with no network, its ports relayed over mounted sockets).
  const vmNetwork = vmAgent ? facts.vmNetwork ?? DEFAULT_VM_NETWORK : undefined;
  const viaAddress = vmNetwork?.mode === "bundle-address";
  const bundleHost = viaAddress ? BUNDLE_ADDRESS : "127.0.0.1";
  const name = `${agent.name}-${facts.suffix}`;
  const prefix = `bottle-${name}`;
  const stateDir = join(facts.stateRoot, "bottles", name);
  const warnings: string[] = [];
  if (vmAgent && def.mounts.length > 0) {
    throw new UserError(
      `Agent "${agent.name}" (${agent.origin}): mounts are not supported on the smolmachines backend: remove them or use --backend docker`,
    );
  }

  const labels: Record<string, string> = {
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
    valueEnv: `${ROUTE_SECRET_PREFIX}${i}`,
    source: r.value,
    ...(r.placeholder_env ? { placeholderEnv: r.placeholder_env } : {}),
  }));
  const anthropic = anthropicPlan(
    def.anthropic,
    facts.hostEnvNames,
    `${ROUTE_SECRET_PREFIX}${routes.length}`,
  );
  if (anthropic.route) routes.push(anthropic.route);
  if (anthropic.warning) warnings.push(anthropic.warning);

  const ws = workspacePlan(agent.name, def, facts, vmAgent, bundleHost, name);
  warnings.push(...ws.warnings);
  const declared = declaredUpstreams(
    agent.name,
    agent.baseDir,
    def,
    facts,
    bundleHost,
    ws,
    routes.length,
  );
  const upstreams: GateUpstreamPlan[] = [...(ws.gate ? [ws.gate] : []), ...declared];
  // Credential routes get a pipelock of their own, which alone exempts the
  // headers egress injects: the agent's own Authorization to any other host
  // is scanned (pipelock's header exemptions hold for every destination).
  const daemons: Daemon[] = [
    "egress",
    "pipelock",
    ...(routes.length > 0 ? ["pipelock-routes" as const] : []),
  ];
  if (upstreams.length > 0) daemons.push("git-gate");
  if (def.supervise) daemons.push("supervise");
  const supervise = def.supervise ? supervisePlan(def.supervise, facts, vmAgent, name) : undefined;

  const isClaude = def.command[0] === "claude";
  if (supervise && !isClaude) {
    warnings.push(
      `supervise: ${
        JSON.stringify(def.command[0])
      } is not claude, so nothing registers the supervise MCP server for it: connect it to http://127.0.0.1:${PORTS.supervise}/mcp yourself`,
    );
  }
  const allowlist = [
    ...new Set([
      ...(isClaude ? CLAUDE_DOMAINS : []),
      ...def.allowed_domains,
      ...routes.map((r) => parseRouteHost(r.host).name),
      ...(anthropic.apiHost ? [anthropic.apiHost] : []),
    ]),
  ].sort();

  const proxyUrl = `http://${bundleHost}:${PORTS.egress}`;
  const noProxy = viaAddress ? `localhost,127.0.0.1,${BUNDLE_ADDRESS}` : "localhost,127.0.0.1";
  const proxy: AgentProxyPlan = { url: proxyUrl, user: PROXY_USER, env: [...PROXY_ENV_NAMES] };
  const env: Record<string, string> = {
    ...def.env,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    NODE_EXTRA_CA_CERTS: CA_GUEST_PATH,
    HOME: AGENT_HOME,
    // Claude Code and the Anthropic SDKs read it; set whenever the setting is not none.
    ...(anthropic.baseUrl ? { ANTHROPIC_BASE_URL: anthropic.baseUrl } : {}),
  };
  for (const r of routes) {
    if (r.placeholderEnv) env[r.placeholderEnv] = placeholderFor(r.placeholderEnv);
  }

  const provision: ProvisionStep[] = [
    { step: "ca-trust", user: "root", guestPath: CA_GUEST_PATH, appendTo: SYSTEM_CA_BUNDLE },
  ];
  if (def.prompt !== undefined || def.prompt_file !== undefined) {
    provision.push({
      step: "prompt",
      user: AGENT_USER,
      guestPath: `${AGENT_HOME}/.bottle/prompt.md`,
      ...(def.prompt !== undefined ? { text: def.prompt } : {}),
      ...(def.prompt_file !== undefined ? { file: resolve(agent.baseDir, def.prompt_file) } : {}),
    });
  }
  if (def.skills.length > 0) {
    provision.push({
      step: "skills",
      user: AGENT_USER,
      guestDir: `${AGENT_HOME}/.claude/skills`,
      dirs: def.skills.map((d) => resolve(agent.baseDir, d)),
    });
  }
  for (const u of upstreams) {
    provision.push({
      step: "clone",
      user: AGENT_USER,
      url: u.url,
      path: u.kind === "host" ? WORKSPACE : u.path,
      identity: facts.repo?.identity ?? facts.gitIdentity ?? {},
      ...(u.kind === "remote" ? { insteadOf: u.remoteUrl } : {}),
      ...(vmAgent ? { gateToken: true } : {}),
    });
  }
  if (supervise && isClaude) {
    provision.push({
      step: "mcp",
      user: AGENT_USER,
      name: SUPERVISE_SERVER,
      url: `http://${bundleHost}:${PORTS.supervise}/mcp`,
      // The daemon answers "no answer" at its timeout; Claude Code's own
      // limit (which progress notifications do not extend) comes later.
      timeoutMs: (supervise.timeoutSeconds + 60) * 1000,
      ...(supervise.auth ? { token: true } : {}),
    });
  }
  const prompt = provision.find((s) => s.step === "prompt");
  const program = [
    ...def.command,
    ...(prompt && isClaude ? ["--append-system-prompt-file", prompt.guestPath] : []),
    // Asking the human needs nobody's permission.
    ...(supervise && isClaude
      ? ["--allowedTools", [TOOLS.approval, TOOLS.question].map(claudeToolName).join(",")]
      : []),
  ];

  const forwards: ForwardPlan[] = viaAddress ? [] : daemons.flatMap((d) => {
    const f = AGENT_FACING[d];
    return f ? [{ daemon: d, port: f.port, socket: `${SOCKETS_DIR}/${f.socket}` }] : [];
  });
  const outbound = `${prefix}-outbound`;
  const sockets = `${prefix}-sockets`;
  // The bundle writes accepted pushes into the host repository itself, so
  // it then runs as the repository's user: the files it adds there are the
  // user's own (a container user would leave files the user cannot remove).
  // The same holds for a supervise queue in the bottle's state dir.
  const writesHostFiles = ws.gate?.transport === "mount" || supervise?.queue.transport === "mount";
  const bundleIds = writesHostFiles && facts.hostUser
    ? facts.hostUser
    : { uid: BUNDLE_UID, gid: BUNDLE_UID };
  const bundleUser = `${bundleIds.uid}:${bundleIds.gid}`;

  const bundleContainer: ContainerPlan = {
    name: `${prefix}-bundle`,
    image: "bundle",
    network: outbound,
    user: bundleUser,
    env: {},
    // Secrets reach the bundle on its stdin at start, not as container env.
    secretEnv: [],
    volumes: [
      ...(vmAgent ? [] : [{ volume: sockets, target: SOCKETS_DIR, readonly: false }]),
      ...(ws.gate?.copyVolume
        ? [{ volume: ws.gate.copyVolume, target: WORKSPACE_COPY_IN_BUNDLE, readonly: false }]
        : []),
    ],
    mounts: [
      ...(ws.gate?.transport === "mount" ? hostRepoMounts(ws.gate) : []),
      ...(supervise?.queue.transport === "mount"
        ? [{ source: supervise.queue.hostDir, target: QUEUE_IN_BUNDLE, readonly: false }]
        : []),
    ],
    addHosts: facts.bundleAddHosts ?? [],
    // A VM with no network reaches these through the host relay: on this
    // host's loopback only, each asking for this bottle's credential.
    ...(vmNetwork?.mode === "sockets"
      ? { publish: forwards.map((f) => ({ hostIp: "127.0.0.1", port: f.port })) }
      : {}),
    capDrop: ["ALL"],
    securityOpt: ["no-new-privileges"],
    resources: {},
    init: false,
    interactive: true,
    command: ["init", "--start-input"],
    startInput: {
      dir: BUNDLE_CONFIG_DIR,
      files: [
        ...BUNDLE_CONFIG_FILES,
        ...(routes.length > 0 ? [PIPELOCK_ROUTES_CONFIG] : []),
        ...(facts.upstreamCaFiles ?? []).map((_, i) => `upstream-ca-${i}.pem`),
        ...(upstreams.length > 0 ? [GATE_CONFIG_FILE] : []),
        ...(supervise ? [SUPERVISE_CONFIG_FILE] : []),
      ].map((f) => ({ name: f, mode: "0400" })),
      secrets: [
        ...routes.map((r) => r.valueEnv),
        ...identityEnvs(upstreams),
        ...(vmAgent && upstreams.length > 0 ? [GATE_TOKEN_ENV] : []),
        ...(supervise?.auth ? [supervise.auth.tokenEnv] : []),
        EGRESS_PROXY_TOKEN_ENV,
      ],
    },
    labels: L.objectLabels(labels, "bundle"),
  };

  const agentContainer: ContainerPlan | undefined = vmAgent ? undefined : {
    name: `${prefix}-agent`,
    image: "agentRun",
    // No network at all: the forwarder below is the agent's only way out.
    network: "none",
    user: AGENT_USER,
    workdir: WORKSPACE,
    env: sortKeys(env),
    // The proxy URLs hold the proxy credential: given in an env file, never on argv.
    secretEnv: proxy.env,
    volumes: [{ volume: sockets, target: SOCKETS_DIR, readonly: true }],
    mounts: [
      ...(ws.agentMount ? [ws.agentMount] : []),
      ...def.mounts.map((m) => ({
        source: isAbsolute(m.source) ? m.source : resolve(agent.baseDir, m.source),
        target: m.target,
        readonly: m.readonly,
      })),
    ],
    addHosts: [],
    capDrop: ["ALL"],
    securityOpt: ["no-new-privileges"],
    resources: {
      ...(def.resources.cpus !== undefined ? { cpus: def.resources.cpus } : {}),
      ...(def.resources.memory !== undefined ? { memory: def.resources.memory } : {}),
      pids: def.resources.pids ?? DEFAULT_PIDS,
    },
    init: true,
    interactive: false,
    // The container's main process is the forwarder (in the image bottle
    // layers over the agent's), run as the agent user: if it dies the
    // container stops, and `bottle ls` shows it.
    entrypoint: FORWARDER_IN_AGENT,
    command: forwards.map((f) => `${f.port}=${f.socket}`),
    labels: L.objectLabels(labels, "agent"),
  };

  return {
    schema: PLAN_SCHEMA,
    bottle: {
      name,
      agent: agent.name,
      origin: agent.origin,
      backend,
      stateDir,
      keptAuditLog: join(facts.stateRoot, "logs", name, "audit.jsonl"),
    },
    labels,
    images: {
      agent: agentImage(agent, def),
      bundle: { source: "builtin", repository: "bottle/bundle", buildArgs: {} },
      agentRun: {
        source: "layer",
        repository: `${agentImage(agent, def).repository}-run`,
        buildArgs: {},
        layerOf: { image: "agent", adds: [FORWARDER_IN_AGENT] },
      },
    },
    networks: [{
      name: outbound,
      internal: false,
      driver: "bridge",
      subnet: "engine-assigned",
      labels: L.objectLabels(labels, "outbound-net"),
    }],
    volumes: [
      ...(vmAgent ? [] : [{
        name: sockets,
        // In memory, owned by the bundle user, so the bundle can create its
        // sockets whichever container mounts the volume first.
        options: {
          type: "tmpfs",
          device: "tmpfs",
          o: `uid=${bundleIds.uid},gid=${bundleIds.gid},mode=0755,size=1m`,
        },
        labels: L.objectLabels(labels, "sockets"),
      }]),
      // On disk: it holds what the bottle pushes until it is fetched to the host.
      ...(ws.gate?.copyVolume
        ? [{ name: ws.gate.copyVolume, options: {}, labels: L.objectLabels(labels, "workspace") }]
        : []),
    ],
    bundle: {
      container: bundleContainer,
      daemons,
      // The egress TCP port is for the bundle's own health check unless a VM
      // must reach it over the network.
      listen: vmAgent
        ? { host: "0.0.0.0", port: PORTS.egress }
        : { host: "127.0.0.1", port: PORTS.egress, socket: `${SOCKETS_DIR}/egress.sock` },
      ports: {
        egress: PORTS.egress,
        pipelock: PORTS.pipelock,
        ...(routes.length > 0 ? { pipelockRoutes: PORTS.pipelockRoutes } : {}),
        health: PORTS.health,
        ...(daemons.includes("git-gate") ? { gitGate: PORTS.gitGate } : {}),
        ...(daemons.includes("supervise") ? { supervise: PORTS.supervise } : {}),
      },
      allowlist,
      routes,
      upstreamCaFiles: facts.upstreamCaFiles ?? [],
      ...(upstreams.length > 0
        ? {
          gitGate: { upstreams, ...(vmAgent ? { auth: { tokenEnv: GATE_TOKEN_ENV } } : {}) },
        }
        : {}),
      ...(supervise ? { supervise } : {}),
      proxyAuth: { tokenEnv: EGRESS_PROXY_TOKEN_ENV },
    },
    workspace: ws.workspace,
    agent: {
      user: AGENT_USER,
      home: AGENT_HOME,
      workdir: WORKSPACE,
      program,
      session: "terminal",
      env: sortKeys(env),
      proxy,
      forwards,
      ...(isClaude
        ? {
          keptHome: {
            hostFile: keptHomeFile(facts, agent.name),
            restore: !facts.freshHome,
          },
        }
        : {}),
      ...(agentContainer ? { container: agentContainer } : {}),
      ...(supervise && isClaude ? { permissionPromptTool: claudeToolName(TOOLS.permission) } : {}),
    },
    ...(vmNetwork
      ? { vm: vmPlan(prefix, def, vmNetwork, forwards, stateDir, facts.hostUser) }
      : {}),
    provision,
    warnings,
  };
}

interface WorkspaceParts {
  workspace: Plan["workspace"];
  gate?: HostUpstreamPlan;
  agentMount?: MountPlan;
  warnings: string[];
}

/**
 * What /workspace holds. Inside a repository the default is a clone through
 * the gate; where that cannot work (a VM agent, an engine on another
 * machine) the default falls back to nothing, with a warning, and asking
 * for it explicitly is an error.
 */
function workspacePlan(
  agentName: string,
  def: AgentDefinition,
  facts: HostFacts,
  vmAgent: boolean,
  bundleHost: string,
  bottle: string,
): WorkspaceParts {
  const chosen = facts.workspace ?? def.workspace;
  const mode = chosen ?? (facts.repo ? "git" : "none");
  const none: WorkspaceParts = { workspace: { mode: "none", guestPath: WORKSPACE }, warnings: [] };
  // Only `mount` can be impossible, and it is never the default.
  const cannot = (why: string): never => {
    throw new UserError(`Agent "${agentName}": workspace: ${mode}: ${why}`);
  };
  if (mode === "none") return none;
  const remote = facts.engineSharesFilesystem === false;
  if (mode === "mount") {
    if (vmAgent) {
      return cannot(
        "the smolmachines backend mounts nothing from this host: use --workspace git or none, or --backend docker",
      );
    }
    if (remote) {
      return cannot(
        "the docker engine (DOCKER_HOST) may not see this host's files: use --workspace git, none, or a local engine",
      );
    }
    const source = facts.cwd ?? ".";
    return {
      workspace: { mode, guestPath: WORKSPACE, hostPath: source },
      agentMount: { source, target: WORKSPACE, readonly: false },
      warnings: [
        `workspace: mount gives the agent ${source} read-write, .git included: it can edit hooks and config that run on this host`,
      ],
    };
  }
  const repo = facts.repo;
  if (!repo) {
    throw new UserError(
      `workspace: git: ${facts.cwd ?? "this directory"} is not inside a git repository`,
    );
  }
  const gate: HostUpstreamPlan = {
    name: "workspace",
    kind: "host",
    hostGitDir: repo.gitDir,
    bundlePath: remote ? `${WORKSPACE_COPY_IN_BUNDLE}/repo.git` : HOST_REPO_IN_BUNDLE,
    landingPrefix: `refs/heads/bottle/${bottle}/`,
    carryChanges: true,
    transport: remote ? "copy" : "mount",
    ...(remote ? { copyVolume: `bottle-${bottle}-workspace` } : {
      landingStore: {
        dir: join(facts.stateRoot, "bottles", bottle, "landing-objects"),
        bottlesDir: join(facts.stateRoot, "bottles"),
      },
    }),
    url: gateUrl(bundleHost, "workspace"),
    policy: {
      branches: ["*"],
      maxPushBytes: toBytes(def.push.max_size),
      allowTags: def.push.allow_tags,
      hooks: def.push.hooks,
    },
  };
  return {
    workspace: {
      mode,
      guestPath: WORKSPACE,
      hostPath: repo.root,
      ...(repo.branch ? { branch: repo.branch } : {}),
    },
    gate,
    warnings: [],
  };
}

/**
 * The agent file's `git:` upstreams. Each gets a mirror in the gate named
 * after the repository, a clone at its `path` (default `/workspace/<repo>`,
 * or `~/<repo>` when /workspace holds the user's repository), and the
 * identity as an env var of the gate daemon. An ssh upstream's server key is
 * checked against the host's known_hosts file (read at launch).
 */
function declaredUpstreams(
  agentName: string,
  baseDir: string,
  def: AgentDefinition,
  facts: HostFacts,
  bundleHost: string,
  ws: WorkspaceParts,
  firstSecret: number,
): RemoteUpstreamPlan[] {
  if (def.git.length === 0) return [];
  const taken = new Set(ws.gate ? [ws.gate.name] : []);
  const paths = new Set<string>();
  return def.git.map((g, i) => {
    const repoName = repoNameOf(g.url);
    let name = repoName;
    for (let n = 2; taken.has(name); n++) name = `${repoName}-${n}`;
    taken.add(name);
    // /workspace is taken when it holds the user's repository (a clone, or the directory itself).
    const inUse = ws.workspace.mode !== "none";
    const path = g.path ?? (inUse ? `${AGENT_HOME}/${name}` : `${WORKSPACE}/${name}`);
    if (inUse && (path === WORKSPACE || path.startsWith(`${WORKSPACE}/`))) {
      throw new UserError(
        `Agent "${agentName}": git upstream ${g.url}: path ${path} is inside /workspace, which holds ${ws.workspace.hostPath}: choose another path or --workspace none`,
      );
    }
    if (paths.has(path)) {
      throw new UserError(
        `Agent "${agentName}": two git upstreams clone into ${path}: give one a path`,
      );
    }
    paths.add(path);
    if (g.url.startsWith("file://")) {
      throw new UserError(
        `Agent "${agentName}": git upstream ${g.url}: the gate runs in the bundle, which cannot see this host's files: a repository here is the workspace (run bottle inside it)`,
      );
    }
    const ssh = !/^https?:\/\//.test(g.url);
    const key = g.identity?.ssh_key;
    const token = g.identity?.token;
    if (ssh && token) {
      throw new UserError(
        `Agent "${agentName}": git upstream ${g.url}: a token is for https:// URLs; this one needs identity.ssh_key`,
      );
    }
    if (!ssh && !token && /^https?:\/\/[^/]*@/.test(g.url)) {
      // The URL is the agent's origin: a token written as its user name would be the agent's.
      throw new UserError(
        `Agent "${agentName}": git upstream ${g.url}: a user name in an https URL is the token's: set identity.token (never the token in the URL)`,
      );
    }
    if (token && g.url.startsWith("http://")) {
      throw new UserError(
        `Agent "${agentName}": git upstream ${g.url}: a token goes over https:// only`,
      );
    }
    if (!ssh && key) {
      throw new UserError(
        `Agent "${agentName}": git upstream ${g.url}: an ssh_key is for ssh URLs; this one needs identity.token`,
      );
    }
    const valueEnv = `BOTTLE_GIT_IDENTITY_${firstSecret + i}`;
    const identity = key
      ? { kind: "ssh-key" as const, valueEnv, source: key }
      : token
      ? { kind: "token" as const, valueEnv, source: token }
      : undefined;
    const home = (p: string) => (facts.homeDir ? join(facts.homeDir, p) : undefined);
    const file = g.known_hosts ?? "~/.ssh/known_hosts";
    const knownHosts = file === "~" || file.startsWith("~/")
      ? home(file.slice(2))
      : isAbsolute(file)
      ? file
      : resolve(baseDir, file);
    if (ssh && !knownHosts) {
      throw new UserError(
        `Agent "${agentName}": git upstream ${g.url}: no known_hosts file (HOME is not set): set known_hosts: in the agent file`,
      );
    }
    return {
      name,
      kind: "remote",
      url: gateUrl(bundleHost, name),
      remoteUrl: g.url,
      path,
      ...(identity ? { identity } : {}),
      ...(ssh && knownHosts ? { knownHostsFile: knownHosts } : {}),
      policy: {
        branches: g.branches,
        maxPushBytes: toBytes(def.push.max_size),
        allowTags: def.push.allow_tags,
        hooks: def.push.hooks,
      },
    };
  });
}

/**
 * The host repository in the bundle: read-only but for this bottle's own
 * `refs/heads/bottle/<name>/` and its reflogs (made at launch); landed
 * objects go to the bottle's own store. Objects, config, hooks and every
 * other ref stay read-only, so no daemon of the bundle (each parses the
 * agent's traffic) can plant what runs on this host at the user's next git
 * command, alter what the user checks out, or move the user's branches.
 */
function hostRepoMounts(u: HostUpstreamPlan): MountPlan[] {
  return [
    { source: u.hostGitDir, target: u.bundlePath, readonly: true },
    ...(u.landingStore
      ? [
        { source: u.landingStore.bottlesDir, target: u.landingStore.bottlesDir, readonly: true },
        { source: u.landingStore.dir, target: u.landingStore.dir, readonly: false },
      ]
      : []),
    ...landingDirs(u.landingPrefix).map((d) => ({
      source: `${u.hostGitDir}/${d}`,
      target: `${u.bundlePath}/${d}`,
      readonly: false,
    })),
  ];
}

/** The gate as the agent reaches it: its relayed loopback port, or the bundle's address from a VM. */
function gateUrl(bundleHost: string, name: string): string {
  return `http://${bundleHost}:${PORTS.gitGate}/${name}.git`;
}

/**
 * Where supervise requests wait: in the bottle's state dir when the engine
 * sees this host's files (`bottle supervise` reads them there), else in the
 * bundle, read through the engine. A VM agent reaches the daemon over the network, where
 * other processes on the host could too: it needs this bottle's token.
 */
function supervisePlan(
  setting: true | { timeout: string },
  facts: HostFacts,
  vmAgent: boolean,
  bottle: string,
): SupervisePlan {
  return {
    timeoutSeconds: durationSeconds(setting === true ? "30m" : setting.timeout),
    queue: facts.engineSharesFilesystem === false
      ? { transport: "bundle" }
      : { transport: "mount", hostDir: join(facts.stateRoot, "bottles", bottle, "supervise") },
    ...(vmAgent ? { auth: { tokenEnv: SUPERVISE_TOKEN_ENV } } : {}),
  };
}

/** The env var of the bundle that holds the supervise daemon's token, where it needs one. */
export const SUPERVISE_TOKEN_ENV = "BOTTLE_SUPERVISE_TOKEN";

/**
 * Where an agent's home is kept for one project (the repository, else the
 * directory it starts in): one project's history never goes into
 * another's bottle, every one of which calls its directory /workspace.
 */
export function keptHomeFile(facts: Pick<HostFacts, "stateRoot" | "repo" | "cwd">, agent: string) {
  const project = facts.repo?.root ?? facts.cwd ?? "";
  const key = createHash("sha256").update(project).digest("hex").slice(0, 16);
  return join(keptHomesDir(facts.stateRoot), agent, `${key}.tar`);
}

/** The env var of the bundle that holds egress's proxy credential. */
export const EGRESS_PROXY_TOKEN_ENV = `${EGRESS_SECRET_PREFIX}PROXY_TOKEN`;

/** The user name in the agent's proxy URLs (egress checks only the password). */
export const PROXY_USER = "bottle";

/** The variables HTTP clients read their proxy from (curl and git read only the lower-case http_proxy). */
export const PROXY_ENV_NAMES = ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] as const;

/** The env var of the bundle that holds the gate's token, where the gate needs one. */
export const GATE_TOKEN_ENV = "BOTTLE_GIT_GATE_TOKEN";

/** `git@host:team/tool.git` -> `tool`, made safe for a URL path and a directory name. */
export function repoNameOf(url: string): string {
  const last = url.replace(/[?#].*$/, "").replace(/\/+$/, "").split(/[/:]/).pop() ?? "";
  const name = last.replace(/\.git$/, "").toLowerCase().replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return !name || name === "workspace" ? "upstream" : name;
}

function identityEnvs(upstreams: GateUpstreamPlan[]): string[] {
  return upstreams.flatMap((u) => u.kind === "remote" && u.identity ? [u.identity.valueEnv] : []);
}

/** "64m" -> bytes (k, m, g are powers of 1024). */
export function toBytes(size: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)$/i.exec(size);
  if (!m) throw new Error(`Invalid size "${size}"`);
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? "").toLowerCase()]!;
  return Math.round(Number(m[1]) * unit);
}

/** RFC 2606 reserves `.invalid`: the one name the VM's DNS may ask about, and it never resolves. */
export const DNS_SENTINEL = "bottle-dns-closed.invalid";

/** Where BOTTLE_SMOLVM_NETWORK or the engine does not say otherwise. */
const DEFAULT_VM_NETWORK = {
  mode: "bundle-address",
  reason: "the default where the engine's container addresses are routable from this host",
} as const;

/**
 * Unix socket paths are short (104 bytes on macOS, 108 on Linux), and smolvm
 * dials the host end by its full path: the relay's sockets live in the
 * bottle's state dir when its paths fit, else in a private dir in /tmp.
 */
const MAX_SOCKET_PATH = 100;

function vmPlan(
  prefix: string,
  def: AgentDefinition,
  net: { mode: VmNetworkMode; reason: string },
  forwards: ForwardPlan[],
  stateDir: string,
  hostUser: HostFacts["hostUser"],
): NonNullable<Plan["vm"]> {
  const memoryMib = def.resources.memory !== undefined ? toMib(def.resources.memory) : undefined;
  const bytes = (s: string) => new TextEncoder().encode(s).length;
  const longest = Math.max(...forwards.map((f) => bytes(basename(f.socket))));
  const inState = join(stateDir, "relay");
  // Named by its state dir too: two state dirs may hold bottles of one name.
  const tag = createHash("sha256").update(stateDir).digest("hex").slice(0, 8);
  const relayDir = bytes(inState) + 1 + longest <= MAX_SOCKET_PATH
    ? inState
    : `/tmp/bottle-${hostUser?.uid ?? "user"}/${basename(stateDir)}-${tag}`;
  return {
    machine: prefix,
    ...(def.resources.cpus !== undefined
      ? { cpus: Math.max(1, Math.ceil(def.resources.cpus)) }
      : {}),
    ...(memoryMib !== undefined ? { memoryMib } : {}),
    network: net.mode === "bundle-address"
      ? {
        mode: "bundle-address",
        reason: net.reason,
        // smolvm's gateway opens every allowed guest connection as a host
        // socket: the bundle's address is the only one allowed. With only
        // --allow-cidr, smolvm forwards DNS for any name; an --allow-host
        // list of one name that never resolves closes that channel.
        allowCidrs: [`${BUNDLE_ADDRESS}/32`],
        allowHosts: [DNS_SENTINEL],
      }
      : {
        mode: "sockets",
        reason: net.reason,
        relayDir,
        sockets: forwards.map((f) => ({
          daemon: f.daemon,
          port: f.port,
          hostSocket: join(relayDir, basename(f.socket)),
          guestSocket: f.socket,
        })),
        forwarder: [
          FORWARDER_IN_AGENT,
          "--daemon",
          ...forwards.map((f) => `${f.port}=${f.socket}`),
        ],
      },
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

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}
