/**
 * The plan: everything a launch will do, as pure data. `bottle plan --json`
 * prints exactly this object (see README, "Plan output"), so its shape is a
 * public, versioned contract: add fields freely, never rename or repurpose.
 * Secrets appear only as references to where their value lives on the host.
 *
 * v2 (this version) differs from v1: the agent container has no network
 * (`agent.container.network` is "none") and reaches the bundle through Unix
 * sockets on a shared volume (`volumes`, `agent.container.command`); every
 * container, network and volume lists the exact engine settings it is made
 * with; `networks` is a list; the VM's egress rules are in `vm`; provision
 * steps name the user they run as.
 *
 * Values known only at launch are written as `{bundle.address}` (the bundle's
 * address on its network, which the engine assigns): the launcher substitutes
 * them and nothing else.
 */
import type { SecretSource } from "../config/schema.ts";
import type { BundleManifest } from "../bundle/init/bundle_manifest.ts";

export const PLAN_SCHEMA = "bottle.plan/v3";
/** Stands for the bundle's address in `vm`, known once the bundle runs. */
export const BUNDLE_ADDRESS = "{bundle.address}";

export type Backend = "docker" | "smolmachines";
export type Daemon = "egress" | "pipelock" | "pipelock-routes" | "git-gate" | "supervise";

/** A secret as the plan shows it: where it comes from, never what it is. */
export type SecretRef = SecretSource;

export interface ImagePlan {
  /**
   * Built-in image (shipped with bottle), the user's Dockerfile, or bottle's
   * layer over another image of this plan (`layerOf`).
   */
  source: "builtin" | "dockerfile" | "layer";
  /** Repository part of the tag; the tag itself is the build context's hash, known at build time. */
  repository: string;
  dockerfile?: string;
  context?: string;
  buildArgs: Record<string, string>;
  /** For a layer: the image it is built on and what it adds from the bundle image. */
  layerOf?: { image: "agent"; adds: string[] };
}

export interface NetworkPlan {
  name: string;
  /** `--internal`: no route out of the host, only to peers on the network. */
  internal: boolean;
  driver: "bridge";
  /** Subnets are assigned by the engine from its address pools, which keeps concurrent bottles apart. */
  subnet: "engine-assigned";
  labels: Record<string, string>;
}

/** A named engine volume (lives in the engine, so remote engines work alike). */
export interface VolumePlan {
  name: string;
  /** `docker volume create --opt` values (the sockets' tmpfs; none for a disk volume). */
  options: Record<string, string>;
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

export interface VolumeMountPlan {
  volume: string;
  target: string;
  readonly: boolean;
}

/**
 * What a container reads on its stdin when it is run attached
 * (`docker run --interactive`, so remote engines work alike and
 * nothing is on the host's disk): config files its init writes under `dir`,
 * and secrets, which it keeps in memory and hands only to the daemon that
 * needs them (never in the container's config, so not in `docker inspect`).
 * Their contents are made at launch (the bottle's CAs and configs).
 */
export interface StartInputPlan {
  dir: string;
  files: { name: string; mode: string }[];
  /** Env var names of the secret values sent (values resolved from `bundle.routes`). */
  secrets: string[];
}

/** One container, with every setting `docker create` gets. */
export interface ContainerPlan {
  name: string;
  /** Which of `images`. */
  image: "agentRun" | "bundle";
  /** "none" (loopback only) or the name of one of `networks`. */
  network: string;
  user: string;
  workdir?: string;
  /** Non-secret environment, on argv as `-e K=V`. */
  env: Record<string, string>;
  /** Names of env vars holding secrets: `-e NAME` on argv, the value only in the docker client's env. */
  secretEnv: string[];
  volumes: VolumeMountPlan[];
  /** Host bind mounts the agent file asked for. */
  mounts: MountPlan[];
  /** Extra /etc/hosts entries ("name:ip" or "name:host-gateway"). */
  addHosts: string[];
  /** Ports published on the host (`-p HOSTIP::PORT`, the host port the engine's choice). */
  publish?: { hostIp: string; port: number }[];
  capDrop: string[];
  securityOpt: string[];
  resources: { cpus?: number; memory?: string; pids?: number };
  /** docker's init (tini) as PID 1: reaps zombies, forwards signals. */
  init: boolean;
  /** Keep stdin open (`-i`): the container reads its start input there. */
  interactive: boolean;
  /** Replaces the image's entrypoint when set. */
  entrypoint?: string;
  /** argv after the image (or the entrypoint). */
  command: string[];
  startInput?: StartInputPlan;
  labels: Record<string, string>;
}

/** How a smolmachines VM reaches the bundle (`BOTTLE_SMOLVM_NETWORK`, else by the engine's kind). */
export type VmNetworkMode = "bundle-address" | "sockets";

export type VmNetworkPlan =
  | {
    /**
     * The VM's egress policy allows the bundle's address alone, and DNS
     * only for a name that never resolves: for engines whose container
     * addresses this host routes to (Docker Engine on Linux, OrbStack).
     */
    mode: "bundle-address";
    /** Why this mode (the engine's kind, or BOTTLE_SMOLVM_NETWORK). */
    reason: string;
    allowCidrs: string[];
    allowHosts: string[];
  }
  | {
    /**
     * No network device at all. Each agent-facing port is a host socket
     * smolvm mounts into the guest (`--mount-socket`, smolvm 1.6.4+); the
     * forwarder in the guest listens on 127.0.0.1 for each and relays to
     * it, and a relay on the host (a process of its own, living as long as
     * the bottle) relays each socket to the bundle's port published on this
     * host's loopback, which asks for the bottle's credential.
     */
    mode: "sockets";
    reason: string;
    /** The relay's dir (0700): its sockets and its record (`relay.json`). */
    relayDir: string;
    sockets: VmSocketPlan[];
    /** What starts the forwarder in the guest (as the agent user). */
    forwarder: string[];
  };

export interface VmSocketPlan {
  daemon: Daemon;
  /** The bundle's port, published on the host's 127.0.0.1 and forwarded on the guest's. */
  port: number;
  hostSocket: string;
  guestSocket: string;
}

/** An agent-facing port: 127.0.0.1:port inside the agent, relayed to the bundle's socket. */
export interface ForwardPlan {
  daemon: Daemon;
  port: number;
  socket: string;
}

/** What `/workspace` holds (README, "The workspace"). */
export interface WorkspacePlan {
  mode: "git" | "mount" | "none";
  guestPath: string;
  /** git: the repository's top level; mount: the directory mounted. */
  hostPath?: string;
  /** git: the branch the bottle starts on (absent on a detached HEAD). */
  branch?: string;
}

/** What the gate accepts in a push to one upstream. */
export interface GatePolicyPlan {
  /** Branch patterns (`*` matches any run of characters, `/` included). */
  branches: string[];
  maxPushBytes: number;
  allowTags: boolean;
  /** The agent file's hook commands, run with `sh -c` in the bundle. */
  hooks: string[];
}

/** One upstream the git gate serves: the user's repository, or one the agent file declares. */
export type GateUpstreamPlan = HostUpstreamPlan | RemoteUpstreamPlan;

interface UpstreamBase {
  /** Its name in the gate's URLs (`<name>.git`). */
  name: string;
  /** The upstream's URL inside the agent (the gate's). */
  url: string;
  policy: GatePolicyPlan;
}

/** The user's repository, on this host. */
export interface HostUpstreamPlan extends UpstreamBase {
  kind: "host";
  /** The host repository's git dir, bind-mounted into the bundle at `bundlePath`. */
  hostGitDir: string;
  bundlePath: string;
  /** An accepted push of refs/heads/B lands in the host repository as `${landingPrefix}B`. */
  landingPrefix: string;
  /** Uncommitted changes become one commit on the starting branch (made at launch). */
  carryChanges: boolean;
  /**
   * How the bundle reaches the host repository. `mount`: bind-mounted at
   * `bundlePath`, and pushes land in it before the agent's push returns.
   * `copy` (an engine that does not see this host's files): at launch the
   * repository's branches and tags are copied through the engine into
   * `copyVolume`, pushes land there, and `bottle fetch` or `bottle stop`
   * brings them to the host repository.
   */
  transport: "mount" | "copy";
  copyVolume?: string;
  /**
   * `mount`: where landed objects go (the host repository's own objects are
   * read-only to the bundle): `dir` in the bottle's state dir, borrowed by
   * the host repository while the bottle runs and imported at its end. The
   * bundle mounts it at the same path: the repository's alternates name it.
   */
  landingStore?: {
    dir: string;
    /**
     * Every bottle's dir, read-only at the same path: the repository borrows
     * each running bottle's store, and git in this bundle must be able to
     * read what the others' branches there point at.
     */
    bottlesDir: string;
  };
}

/**
 * A declared upstream (`git:`): the gate mirrors it with the identity, and
 * pushes what it accepts on to it before the agent's push returns.
 */
export interface RemoteUpstreamPlan extends UpstreamBase {
  kind: "remote";
  /** The real URL: only the bundle talks to it; inside the agent it is rewritten to `url`. */
  remoteUrl: string;
  /** Where the agent's clone goes. */
  path: string;
  /** The push identity: an env var of the gate daemon, set from `source` at launch. */
  identity?: { kind: "ssh-key" | "token"; valueEnv: string; source: SecretRef };
  /** ssh upstreams: the host file whose entries the bundle checks the server's key against. */
  knownHostsFile?: string;
}

/** Where supervise requests wait for the human, and for how long. */
export interface SupervisePlan {
  timeoutSeconds: number;
  /**
   * `mount`: a dir in the bottle's state dir, bind-mounted into the bundle,
   * which `bottle supervise` reads and answers directly. `bundle` (an engine
   * that does not see this host's files): in the bundle container itself,
   * read and answered through the engine (it is gone with the bundle; the
   * audit log, kept on the host, has every request and answer).
   */
  queue: { transport: "mount"; hostDir: string } | { transport: "bundle" };
  /** Where the daemon listens on an address the host reaches (smolmachines): its token. */
  auth?: { tokenEnv: string };
}

/** How the agent reaches egress: see `Plan.agent.proxy`. */
export interface AgentProxyPlan {
  /** Egress as the agent reaches it, without the credential: `http://127.0.0.1:9000`. */
  url: string;
  user: string;
  /** The variables that carry the credentialed URL. */
  env: string[];
}

export type ProvisionStep =
  /** Appends the bottle's CAs (egress's and pipelock's) to the system trust, as root. */
  | { step: "ca-trust"; user: "root"; guestPath: string; appendTo: string }
  /** Writes the appended system prompt, as the agent user. */
  | { step: "prompt"; user: string; guestPath: string; text?: string; file?: string }
  /** Copies skill directories under the skills dir, as the agent user. */
  | { step: "skills"; user: string; guestDir: string; dirs: string[] }
  /**
   * Clones an upstream from the gate, as the agent user, once the bundle
   * is ready: every branch local, the starting one checked out.
   */
  /**
   * Registers the supervise daemon with Claude Code (`claude mcp add-json`,
   * user scope), as the agent user, with a per-call timeout past the
   * request's own so that the daemon's "no answer" arrives first.
   */
  | {
    step: "mcp";
    user: string;
    name: string;
    url: string;
    timeoutMs: number;
    /** The daemon wants this bottle's token (sent as a Bearer header; given on stdin). */
    token?: boolean;
  }
  | {
    step: "clone";
    user: string;
    url: string;
    path: string;
    identity: { name?: string; email?: string };
    /** A declared upstream's real URL: cloned as `origin`, rewritten to `url` (`url.<url>.insteadOf`). */
    insteadOf?: string;
    /** The gate wants its token: the clone's URL carries it (given on stdin, never argv). */
    gateToken?: boolean;
  };

export interface Plan {
  schema: typeof PLAN_SCHEMA;
  bottle: {
    name: string;
    agent: string;
    origin: string;
    backend: Backend;
    stateDir: string;
    /** Where the audit log is kept on the host once the bundle is gone (after `stop`). */
    keptAuditLog: string;
  };
  labels: Record<string, string>;
  /** `agent` is the agent's own image; `agentRun` is what runs: it plus bottle's forwarder. */
  images: { agent: ImagePlan; bundle: ImagePlan; agentRun: ImagePlan };
  networks: NetworkPlan[];
  volumes: VolumePlan[];
  bundle: {
    container: ContainerPlan;
    daemons: Daemon[];
    /** The egress listener: TCP (loopback only unless a VM must reach it) and, for containers, a Unix socket. */
    listen: { host: string; port: number; socket?: string };
    /** Ports inside the bundle (pipelock and health on its loopback only), as its init reads them. */
    ports: BundleManifest["ports"];
    allowlist: string[];
    routes: RoutePlan[];
    /** Host files of extra CAs the bundle trusts toward upstreams (BOTTLE_UPSTREAM_CA_CERTS). */
    upstreamCaFiles: string[];
    /** The git gate's upstreams (with `git-gate` in `daemons`). */
    gitGate?: {
      upstreams: GateUpstreamPlan[];
      /**
       * Where the gate listens on an address the host reaches (smolmachines):
       * every request must carry this bottle's gate token, made at launch and
       * held by the bundle (`tokenEnv`) and by the agent's clones only.
       */
      auth?: { tokenEnv: string };
    };
    /** The supervise daemon (with `supervise` in `daemons`). */
    supervise?: SupervisePlan;
    /**
     * Egress serves only requests that carry this bottle's proxy credential,
     * made at launch and held by the bundle (`tokenEnv`) and by the agent's
     * proxy URLs (`agent.proxy`) alone.
     */
    proxyAuth: { tokenEnv: string };
  };
  workspace: WorkspacePlan;
  agent: {
    user: string;
    home: string;
    workdir: string;
    /** The agent program's argv (what `start` and `attach` run). */
    program: string[];
    /**
     * `terminal`: the program runs on this terminal, stdin attached
     * (`start`). `headless`: the prompt is in `program`, no stdin, output
     * to this terminal (`run`).
     */
    session: "terminal" | "headless";
    /** headless: what `bottle attach` runs (the agent on the terminal, not the task again). */
    attachProgram?: string[];
    /**
     * Environment of every agent process (the container's or the VM's);
     * credentials only as placeholders.
     */
    env: Record<string, string>;
    /**
     * The proxy variables, set in every agent process besides `env`: each
     * holds `url` with `user` and the bottle's proxy credential in it. Their
     * values are made at launch and are on no argv (docker: an `--env-file`;
     * smolmachines: a guest file every agent command reads).
     */
    proxy: AgentProxyPlan;
    /** How the agent reaches the bundle's agent-facing daemons (docker). */
    forwards: ForwardPlan[];
    /**
     * Claude Code: its settings, onboarding state and history, kept on the
     * host across bottles of this agent (`hostFile`), put back at start
     * unless `restore` is false (`--fresh`) and saved when the bottle stops.
     */
    keptHome?: { hostFile: string; restore: boolean };
    /** docker: the agent's container. */
    container?: ContainerPlan;
    /**
     * Claude Code with supervise: the MCP tool headless sessions hand every
     * permission prompt to (`--permission-prompt-tool`).
     */
    permissionPromptTool?: string;
  };
  /** smolmachines: the microVM, and how it reaches the bundle. */
  vm?: {
    machine: string;
    cpus?: number;
    memoryMib?: number;
    network: VmNetworkPlan;
  };
  provision: ProvisionStep[];
  warnings: string[];
}
