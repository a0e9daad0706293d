/**
 * Which Docker engine the docker CLI reaches, read from what it says about
 * itself (`docker info --format '{{json .}}'` and the current context from
 * `docker context inspect`), and what that means for bottle: the docker
 * backend works on every engine; smolmachines needs the bundle's bridge
 * address routable from this host; some engine versions carry isolation bugs.
 * Pure: `bottle doctor` gathers the JSON and prints these findings.
 */

/** The fields of `docker info --format '{{json .}}'` read here (all optional: engines differ). */
export interface DockerInfo {
  ServerVersion?: string;
  OperatingSystem?: string;
  OSType?: string;
  KernelVersion?: string;
  Name?: string;
  /** Podman's compatible API says "Apache-2.0"; Docker Engine does not. */
  ProductLicense?: string;
  SecurityOptions?: string[] | null;
  Labels?: string[] | null;
  ClientInfo?: { Os?: string; Context?: string } | null;
}

/** The current docker context: its name and its docker endpoint (`unix://…`, `tcp://…`, `ssh://…`). */
export interface DockerContext {
  name: string;
  endpoint: string;
}

export type EngineKindId =
  | "docker-desktop"
  | "orbstack"
  | "colima"
  | "rancher-desktop"
  | "podman"
  | "native-linux"
  | "remote"
  | "unknown";

export interface EngineKind {
  id: EngineKindId;
  /** For people: "Docker Desktop", "Docker Engine on Linux", …. */
  label: string;
  /** What gave it away, e.g. `OperatingSystem "OrbStack"`. */
  evidence: string;
  version: string;
  rootless: boolean;
  /** The endpoint is not a socket on this machine (tcp/ssh to another host). */
  remote: boolean;
  /** The docker client's OS (`ClientInfo.Os`), when the client says. */
  clientOs?: string;
  context: DockerContext;
}

/** A doctor finding (the shape of `bottle doctor --json` entries). */
export interface EngineFinding {
  name: string;
  ok: boolean;
  required: boolean;
  detail: string;
  fix?: string;
  /** The "engine kind" finding names the kind it found. */
  kind?: EngineKindId;
}

const LABELS: Record<EngineKindId, string> = {
  "docker-desktop": "Docker Desktop",
  orbstack: "OrbStack",
  colima: "Colima",
  "rancher-desktop": "Rancher Desktop",
  podman: "Podman (docker-compatible API)",
  "native-linux": "Docker Engine on Linux",
  remote: "Docker Engine on another machine",
  unknown: "an engine bottle does not recognise",
};

/** Reads the kind of engine from its `docker info` JSON and the current context. */
export function classifyEngine(info: DockerInfo, context: DockerContext): EngineKind {
  const os = info.OperatingSystem ?? "";
  const kernel = info.KernelVersion ?? "";
  const name = info.Name ?? "";
  const endpoint = context.endpoint;
  const labels = info.Labels ?? [];
  const remote = isRemote(endpoint);
  const rootless = (info.SecurityOptions ?? []).some((o) => /(^|,)name=rootless(,|$)/.test(o));
  const clientOs = info.ClientInfo?.Os;
  const make = (id: EngineKindId, evidence: string): EngineKind => ({
    id,
    label: LABELS[id],
    evidence,
    version: info.ServerVersion ?? "",
    rootless,
    remote,
    ...(clientOs ? { clientOs } : {}),
    context,
  });
  const q = JSON.stringify;

  if (/^orbstack$/i.test(os)) return make("orbstack", `OperatingSystem ${q(os)}`);
  if (/orbstack/i.test(kernel)) return make("orbstack", `KernelVersion ${q(kernel)}`);
  if (/\/\.orbstack\//.test(endpoint)) return make("orbstack", `endpoint ${q(endpoint)}`);
  if (/^docker desktop/i.test(os)) return make("docker-desktop", `OperatingSystem ${q(os)}`);
  if (labels.some((l) => l.startsWith("com.docker.desktop."))) {
    return make("docker-desktop", "a com.docker.desktop label");
  }
  if (/linuxkit/i.test(kernel)) return make("docker-desktop", `KernelVersion ${q(kernel)}`);
  if (/rancher.desktop/i.test(os)) return make("rancher-desktop", `OperatingSystem ${q(os)}`);
  if (/rancher-desktop/i.test(name)) return make("rancher-desktop", `Name ${q(name)}`);
  if (/\/\.rd\/docker\.sock$/.test(endpoint) || context.name === "rancher-desktop") {
    return make("rancher-desktop", `context ${q(context.name)} at ${q(endpoint)}`);
  }
  if (/^colima(-|$)/i.test(name)) return make("colima", `Name ${q(name)}`);
  if (/\/\.colima\//.test(endpoint) || /^colima(-|$)/.test(context.name)) {
    return make("colima", `context ${q(context.name)} at ${q(endpoint)}`);
  }
  if (info.ProductLicense === "Apache-2.0") {
    return make("podman", `ProductLicense ${q(info.ProductLicense)}`);
  }
  if (/podman/i.test(endpoint) || /podman/i.test(context.name)) {
    return make("podman", `context ${q(context.name)} at ${q(endpoint)}`);
  }
  if (
    /^desktop-linux$/.test(context.name) ||
    /\/\.docker\/(run|desktop)\/docker\.sock$/.test(endpoint)
  ) {
    return make("docker-desktop", `context ${q(context.name)} at ${q(endpoint)}`);
  }
  if (remote) return make("remote", `endpoint ${q(endpoint)}`);
  if (info.OSType === "linux" && (clientOs === undefined || clientOs === "linux")) {
    return make("native-linux", `OperatingSystem ${q(os)} on a local socket`);
  }
  return make("unknown", `OperatingSystem ${q(os)}, Name ${q(name)}, endpoint ${q(endpoint)}`);
}

/** A socket on this machine, or a TCP port on its loopback, is local; anything else is another machine. */
function isRemote(endpoint: string): boolean {
  if (endpoint === "" || /^(unix|npipe|fd):/.test(endpoint)) return false;
  const m = /^tcp:\/\/\[?([^\]/:]+)\]?(:\d+)?/.exec(endpoint);
  if (m) return !/^(localhost|127\.\d+\.\d+\.\d+|::1)$/.test(m[1]!);
  return true;
}

/** `major.minor.patch` of a Docker Engine version string ("20.10.24+dfsg1", "27.4.0"), or undefined. */
export function engineVersion(text: string): [number, number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/**
 * Whether a Docker Engine version forwards external DNS from `--internal`
 * networks (CVE-2024-29018): everything before 26.0.0 except 25.0.4+ and
 * 23.0.11+ (the fixed backports).
 */
export function hasCve202429018(v: [number, number, number]): boolean {
  const [major, minor, patch] = v;
  if (major >= 26) return false;
  if (major === 25) return minor === 0 && patch < 4;
  if (major === 23) return minor === 0 && patch < 11;
  return true;
}

/** How bottle stays out of CVE-2024-29018's reach on every engine (see README, make_plan.ts). */
const BOTTLE_CLOSES_DNS = "bottle closes it itself: it makes no --internal network; " +
  "the agent container has no network (--network none) and never reaches that resolver; " +
  "a smolmachines VM's DNS is closed by an --allow-host list of one name that never resolves (tests/integration/dns_capture_test.ts checks that no query " +
  "leaves the host)";

const SMOL_NEEDS = "smolvm's network gateway opens every guest connection as a host socket, " +
  "so the bundle's bridge address must be routable from this host";

/** How a smolmachines VM reaches the bundle on an engine (plan: `vm.network`), and why. */
export type VmNetworkChoice =
  | { ok: true; mode: "bundle-address" | "sockets"; reason: string }
  | { ok: false; reason: string };

/**
 * Where the bundle's bridge address is routable from this host (and nothing
 * else listens there), the VM's egress policy allows that address alone;
 * elsewhere the VM gets no network and the bundle's ports come in as
 * sockets. A remote engine publishes its ports on another machine's
 * loopback: neither way reaches it.
 */
export function vmNetworkFor(k: EngineKind): VmNetworkChoice {
  if (k.remote) {
    return {
      ok: false,
      reason: `the engine is at ${k.context.endpoint}, so the bundle runs on that machine, ` +
        "where neither its bridge address nor its published ports are this host's",
    };
  }
  const address = (why: string) =>
    ({
      ok: true,
      mode: "bundle-address",
      reason: `${why}: its bridge addresses are routable from this host`,
    }) as const;
  const sockets = (why: string) => ({ ok: true, mode: "sockets", reason: why }) as const;
  if (k.rootless) {
    return sockets(
      `${k.label} runs rootless, keeping container networks in its own network namespace`,
    );
  }
  switch (k.id) {
    case "native-linux":
      return address("Docker Engine for Linux");
    case "orbstack":
      return address("OrbStack");
    case "podman":
      if (k.clientOs === "linux" && !/podman-machine|\/\.lima\//.test(k.context.endpoint)) {
        return address("rootful Podman on Linux");
      }
      return sockets("a Podman machine keeps container addresses inside its VM");
    case "docker-desktop":
    case "colima":
    case "rancher-desktop":
      return sockets(`${k.label} keeps container addresses inside its own VM`);
    default:
      return sockets(`bottle cannot tell whether ${k.label} routes its container addresses here`);
  }
}

/** The engine's kind, smolmachines on it, and the engine-version bugs that touch isolation. */
export function engineFindings(info: DockerInfo, context: DockerContext): EngineFinding[] {
  return kindFindings(classifyEngine(info, context));
}

/** The same, for a kind already read (`readEngineKind`). */
export function kindFindings(k: EngineKind): EngineFinding[] {
  return [kindFinding(k), smolmachinesFinding(k), cveFinding(k)];
}

function kindFinding(k: EngineKind): EngineFinding {
  const how = [
    k.rootless ? "rootless" : "",
    `context "${k.context.name}"${k.context.endpoint ? ` at ${k.context.endpoint}` : ""}`,
    `known by ${k.evidence}`,
  ].filter(Boolean).join(", ");
  return {
    name: "engine kind",
    ok: true,
    required: false,
    kind: k.id,
    detail:
      `${k.label}${k.version ? ` ${k.version}` : ""} (${how}): --backend docker works here, ` +
      "as on every engine the docker CLI reaches",
  };
}

function smolmachinesFinding(k: EngineKind): EngineFinding {
  const name = "smolmachines on this engine";
  const choice = vmNetworkFor(k);
  if (!choice.ok) {
    return {
      name,
      ok: false,
      required: false,
      detail: `not on this engine: ${choice.reason}. bottle refuses --backend smolmachines here`,
      fix: "use --backend docker with this engine, or a local engine for smolmachines",
    };
  }
  if (choice.mode === "bundle-address") {
    return {
      name,
      ok: true,
      required: false,
      detail: `works: ${SMOL_NEEDS}; on ${choice.reason}, and nothing else listens there ` +
        "(bottle connects to the bundle before it makes a VM)",
    };
  }
  return {
    name,
    ok: true,
    required: false,
    detail:
      `works with a smolvm that has --mount-socket (see the smolvm check): ${choice.reason}, so the VM gets no ` +
      "network at all and the bundle's ports reach it as sockets smolvm mounts into the guest " +
      "(--mount-socket), relayed to the bundle's ports on this host's loopback",
  };
}

function cveFinding(k: EngineKind): EngineFinding {
  const name = "CVE-2024-29018 (engine DNS from --internal networks)";
  const fix =
    "nothing for bottle; upgrade the engine to 26.0.0 or later (or 25.0.4, 23.0.11) for your " +
    "other containers on --internal networks";
  if (k.id === "podman") {
    return {
      name,
      ok: true,
      required: false,
      detail:
        `not Docker Engine (Podman ${k.version}): the bug is in Docker's embedded resolver; ${BOTTLE_CLOSES_DNS}`,
    };
  }
  const v = engineVersion(k.version);
  if (!v) {
    return {
      name,
      ok: true,
      required: false,
      detail: `cannot read a Docker Engine version from "${k.version}"; ${BOTTLE_CLOSES_DNS}`,
    };
  }
  if (!hasCve202429018(v)) {
    return {
      name,
      ok: true,
      required: false,
      detail:
        `not affected: Docker Engine ${k.version} has the fix (26.0.0, 25.0.4, 23.0.11); bottle does not rely on it: ${BOTTLE_CLOSES_DNS}`,
    };
  }
  return {
    name,
    ok: true,
    required: false,
    detail: `Docker Engine ${k.version} is affected by its version (fixed in 26.0.0, 25.0.4, ` +
      "23.0.11; a distribution may have backported the fix): its embedded resolver forwards " +
      `queries for outside names from --internal networks. ${BOTTLE_CLOSES_DNS}`,
    fix,
  };
}
