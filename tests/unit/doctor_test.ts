/**
 * `bottle doctor`'s engine checks: which engine the docker CLI reaches (from
 * `docker info --format '{{json .}}'` and `docker context inspect`), whether
 * smolmachines can work on it, engine versions with known isolation bugs,
 * and the pipelock image. The fixtures are hand-written from what each
 * engine's `docker info` prints (trimmed to the fields read); the native one
 * is this development machine's Debian docker.io 20.10.24.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  classifyEngine,
  type DockerContext,
  type DockerInfo,
  engineFindings,
  type EngineKindId,
  engineVersion,
  hasCve202429018,
  vmNetworkFor,
} from "../../src/engine/engine_kind.ts";
import { pipelockCheck } from "../../src/cli/doctor.ts";
import { cli } from "../helpers/cli.ts";

interface Fixture {
  info: DockerInfo;
  context: DockerContext;
  kind: EngineKindId;
  /** How a smolmachines VM reaches its bundle here, or that it cannot run. */
  smol: "bundle-address" | "sockets" | "refused";
  /** Affected by CVE-2024-29018 by its version. */
  cve: boolean;
}

const FIXTURES: Record<string, Fixture> = {
  "native Debian docker.io 20.10.24": {
    info: {
      ServerVersion: "20.10.24+dfsg1",
      OperatingSystem: "Debian GNU/Linux 12 (bookworm)",
      OSType: "linux",
      KernelVersion: "6.1.0-28-amd64",
      Name: "vm",
      Labels: [],
      SecurityOptions: ["name=seccomp,profile=default"],
      ClientInfo: { Os: "linux", Context: "default" },
    },
    context: { name: "default", endpoint: "unix:///var/run/docker.sock" },
    kind: "native-linux",
    smol: "bundle-address",
    cve: true,
  },
  "Docker Desktop on macOS": {
    info: {
      ServerVersion: "27.4.0",
      OperatingSystem: "Docker Desktop",
      OSType: "linux",
      KernelVersion: "6.10.14-linuxkit",
      Name: "docker-desktop",
      Labels: [
        "com.docker.desktop.address=unix:///Users/ana/Library/Containers/com.docker.docker/Data/docker-cli.sock",
      ],
      SecurityOptions: ["name=seccomp,profile=unconfined", "name=cgroupns"],
      ClientInfo: { Os: "darwin", Context: "desktop-linux" },
    },
    context: { name: "desktop-linux", endpoint: "unix:///Users/ana/.docker/run/docker.sock" },
    kind: "docker-desktop",
    smol: "sockets",
    cve: false,
  },
  "OrbStack on macOS": {
    info: {
      ServerVersion: "27.3.1",
      OperatingSystem: "OrbStack",
      OSType: "linux",
      KernelVersion: "6.11.10-orbstack-00280-gd3b7ec68d3d4",
      Name: "orbstack",
      Labels: null,
      SecurityOptions: ["name=seccomp,profile=builtin", "name=cgroupns"],
      ClientInfo: { Os: "darwin", Context: "orbstack" },
    },
    context: { name: "orbstack", endpoint: "unix:///Users/ana/.orbstack/run/docker.sock" },
    kind: "orbstack",
    smol: "bundle-address",
    cve: false,
  },
  "Colima on macOS": {
    info: {
      ServerVersion: "25.0.3",
      OperatingSystem: "Ubuntu 23.10",
      OSType: "linux",
      KernelVersion: "6.5.0-15-generic",
      Name: "colima",
      Labels: [],
      SecurityOptions: ["name=apparmor", "name=seccomp,profile=builtin", "name=cgroupns"],
      ClientInfo: { Os: "darwin", Context: "colima" },
    },
    context: { name: "colima", endpoint: "unix:///Users/ana/.colima/default/docker.sock" },
    kind: "colima",
    smol: "sockets",
    cve: true,
  },
  "Rancher Desktop (moby) on macOS": {
    info: {
      ServerVersion: "26.1.5",
      OperatingSystem: "Alpine Linux v3.20",
      OSType: "linux",
      KernelVersion: "6.6.41-0-virt",
      Name: "lima-rancher-desktop",
      SecurityOptions: ["name=seccomp,profile=builtin", "name=cgroupns"],
      ClientInfo: { Os: "darwin", Context: "rancher-desktop" },
    },
    context: { name: "rancher-desktop", endpoint: "unix:///Users/ana/.rd/docker.sock" },
    kind: "rancher-desktop",
    smol: "sockets",
    cve: false,
  },
  "Podman machine on macOS (docker-compatible socket)": {
    info: {
      ServerVersion: "5.2.3",
      OperatingSystem: "fedora",
      OSType: "linux",
      KernelVersion: "6.10.10-200.fc40.aarch64",
      Name: "localhost.localdomain",
      ProductLicense: "Apache-2.0",
      SecurityOptions: ["name=seccomp,profile=default", "name=selinux"],
      ClientInfo: { Os: "darwin", Context: "default" },
    },
    context: {
      name: "default",
      endpoint: "unix:///var/folders/x1/abc/T/podman/podman-machine-default-api.sock",
    },
    kind: "podman",
    smol: "sockets",
    cve: false,
  },
  "rootless Podman on Linux": {
    info: {
      ServerVersion: "4.9.3",
      OperatingSystem: "ubuntu",
      OSType: "linux",
      KernelVersion: "6.8.0-45-generic",
      Name: "laptop",
      ProductLicense: "Apache-2.0",
      SecurityOptions: ["name=apparmor", "name=seccomp,profile=default", "name=rootless"],
      ClientInfo: { Os: "linux", Context: "default" },
    },
    context: { name: "default", endpoint: "unix:///run/user/1000/podman/podman.sock" },
    kind: "podman",
    smol: "sockets",
    cve: false,
  },
  "rootful Podman on Linux": {
    info: {
      ServerVersion: "5.3.1",
      OperatingSystem: "fedora",
      OSType: "linux",
      KernelVersion: "6.11.9-300.fc41.x86_64",
      Name: "ws",
      ProductLicense: "Apache-2.0",
      SecurityOptions: ["name=seccomp,profile=default", "name=selinux"],
      ClientInfo: { Os: "linux", Context: "default" },
    },
    context: { name: "default", endpoint: "unix:///run/podman/podman.sock" },
    kind: "podman",
    smol: "bundle-address",
    cve: false,
  },
  "rootless Docker Engine on Linux": {
    info: {
      ServerVersion: "27.5.1",
      OperatingSystem: "Ubuntu 24.04.1 LTS",
      OSType: "linux",
      KernelVersion: "6.8.0-51-generic",
      Name: "ws",
      SecurityOptions: [
        "name=apparmor",
        "name=seccomp,profile=builtin",
        "name=rootless",
        "name=cgroupns",
      ],
      ClientInfo: { Os: "linux", Context: "rootless" },
    },
    context: { name: "rootless", endpoint: "unix:///run/user/1000/docker.sock" },
    kind: "native-linux",
    smol: "sockets",
    cve: false,
  },
  "Docker Engine on another machine over ssh": {
    info: {
      ServerVersion: "24.0.7",
      OperatingSystem: "Ubuntu 22.04.5 LTS",
      OSType: "linux",
      KernelVersion: "5.15.0-125-generic",
      Name: "big-box",
      SecurityOptions: ["name=apparmor", "name=seccomp,profile=builtin", "name=cgroupns"],
      ClientInfo: { Os: "darwin", Context: "default" },
    },
    context: { name: "default", endpoint: "ssh://ana@big-box" },
    kind: "remote",
    smol: "refused",
    cve: true,
  },
  "a Lima VM's Docker Engine on macOS (not recognised)": {
    info: {
      ServerVersion: "27.3.1",
      OperatingSystem: "Ubuntu 24.04.1 LTS",
      OSType: "linux",
      KernelVersion: "6.8.0-48-generic",
      Name: "lima-docker",
      ClientInfo: { Os: "darwin", Context: "lima-docker" },
    },
    context: { name: "lima-docker", endpoint: "unix:///Users/ana/.lima/docker/sock/docker.sock" },
    kind: "unknown",
    smol: "sockets",
    cve: false,
  },
};

for (const [what, f] of Object.entries(FIXTURES)) {
  Deno.test(`engine kind: ${what} is ${f.kind}, smolmachines: ${f.smol}`, () => {
    const k = classifyEngine(f.info, f.context);
    assert.equal(k.id, f.kind);
    const [kind, smol, cve] = engineFindings(f.info, f.context);
    assert.ok(kind && smol && cve);

    assert.equal(kind.name, "engine kind");
    assert.equal(kind.kind, f.kind);
    assert.equal(kind.ok, true);
    assert.match(kind.detail, /--backend docker works here/);

    // The finding and the plan's choice are one decision.
    const choice = vmNetworkFor(k);
    assert.equal(choice.ok ? choice.mode : "refused", f.smol);
    assert.equal(smol.name, "smolmachines on this engine");
    assert.equal(smol.required, false);
    assert.equal(smol.ok, f.smol !== "refused");
    if (f.smol === "bundle-address") {
      assert.match(smol.detail, /bridge address must be routable from this host/);
    } else if (f.smol === "sockets") {
      assert.match(
        smol.detail,
        /the VM gets no network at all and the bundle's ports reach it as sockets/,
      );
    } else {
      assert.match(smol.detail, /^not on this engine:/);
      assert.match(smol.fix ?? "", /--backend docker/);
    }

    // bottle is never exposed, affected engine or not; an affected one gets its fix.
    assert.match(cve.name, /CVE-2024-29018/);
    assert.equal(cve.ok, true);
    assert.equal(cve.required, false);
    assert.match(cve.detail, /bottle closes it itself: it makes no --internal network/);
    assert.equal(/is affected/.test(cve.detail), f.cve);
    assert.equal(cve.fix !== undefined, f.cve);
    if (f.cve) assert.match(cve.fix!, /26\.0\.0/);
  });
}

Deno.test("engine kind: the words for the VM engines and for native Linux are the README's", () => {
  const d = FIXTURES["Docker Desktop on macOS"]!;
  const desktop = engineFindings(d.info, d.context)[1]!;
  assert.match(desktop.detail, /Docker Desktop keeps container addresses inside its own VM/);
  const c = FIXTURES["Colima on macOS"]!;
  assert.match(engineFindings(c.info, c.context)[1]!.detail, /Colima keeps container addresses/);
  const n = FIXTURES["native Debian docker.io 20.10.24"]!;
  const native = engineFindings(n.info, n.context);
  assert.match(native[0]!.detail, /^Docker Engine on Linux 20\.10\.24\+dfsg1 /);
  assert.match(
    native[1]!.detail,
    /on Docker Engine for Linux: its bridge addresses are routable from this host, and nothing else listens/,
  );
  const r = FIXTURES["Docker Engine on another machine over ssh"]!;
  assert.match(engineFindings(r.info, r.context)[1]!.detail, /ssh:\/\/ana@big-box/);
});

Deno.test("engine kind: Docker Desktop is recognised by its kernel or context alone", () => {
  const local = { name: "default", endpoint: "unix:///var/run/docker.sock" };
  assert.equal(
    classifyEngine({ OSType: "linux", KernelVersion: "5.15.49-linuxkit" }, local).id,
    "docker-desktop",
  );
  assert.equal(
    classifyEngine(
      { OSType: "linux", OperatingSystem: "Ubuntu 24.04" },
      { name: "desktop-linux", endpoint: "unix:///home/ana/.docker/desktop/docker.sock" },
    ).id,
    "docker-desktop",
  );
});

Deno.test("engine kind: a TCP endpoint on loopback is local, on another host remote", () => {
  const info: DockerInfo = {
    OSType: "linux",
    ServerVersion: "27.0.3",
    ClientInfo: { Os: "linux" },
  };
  const at = (endpoint: string) => classifyEngine(info, { name: "default", endpoint });
  assert.equal(at("tcp://127.0.0.1:2375").id, "native-linux");
  assert.equal(at("tcp://localhost:2376").remote, false);
  assert.equal(at("tcp://10.0.0.5:2376").id, "remote");
  assert.equal(at("ssh://me@box").remote, true);
});

Deno.test("engine versions: CVE-2024-29018 before 26.0.0, except 25.0.4+ and 23.0.11+", () => {
  const cases: [string, boolean][] = [
    ["20.10.24+dfsg1", true],
    ["23.0.10", true],
    ["23.0.11", false],
    ["24.0.9", true],
    ["25.0.3", true],
    ["25.0.4", false],
    ["25.0.5", false],
    ["26.0.0", false],
    ["27.4.0", false],
    ["28.0.0-rc.1", false],
  ];
  for (const [text, affected] of cases) {
    const v = engineVersion(text);
    assert.ok(v, text);
    assert.equal(hasCve202429018(v), affected, text);
  }
  assert.equal(engineVersion("dev"), undefined);
  const [, , cve] = engineFindings(
    { ServerVersion: "dev", OSType: "linux" },
    { name: "default", endpoint: "unix:///var/run/docker.sock" },
  );
  assert.match(cve!.detail, /^cannot read a Docker Engine version from "dev"; bottle closes it/);
});

const PINNED = "ghcr.io/luckypipewrench/pipelock-init@sha256:" + "0".repeat(64);

Deno.test("pipelock image: present locally, or pullable, is ok and required", () => {
  const here = pipelockCheck({ image: PINNED, fromEnv: false, local: true, otherBundles: [] });
  assert.equal(here.ok, true);
  assert.equal(here.required, true);
  assert.match(here.detail, /\(pinned\) is present locally$/);
  const pull = pipelockCheck({
    image: PINNED,
    fromEnv: false,
    local: false,
    pull: { ok: true, how: "docker manifest inspect" },
    otherBundles: [],
  });
  assert.equal(pull.ok, true);
  assert.match(pull.detail, /can be pulled \(docker manifest inspect answered\)/);
});

Deno.test("pipelock image: neither here nor pullable fails with the BOTTLE_PIPELOCK_IMAGE fix", () => {
  const c = pipelockCheck({
    image: PINNED,
    fromEnv: false,
    local: false,
    pull: { ok: false, reason: "docker manifest inspect: no such host" },
    otherBundles: ["bottle/bundle:03cd33159305093d"],
  });
  assert.equal(c.ok, false);
  assert.equal(c.required, true);
  assert.match(c.detail, /cannot be pulled from here \(docker manifest inspect: no such host\)/);
  assert.match(c.detail, /1 other bottle\/bundle image\(s\) are here \(bottle\/bundle:03cd/);
  assert.equal(c.fix, "set BOTTLE_PIPELOCK_IMAGE to a local image holding /pipelock");

  const fromEnv = pipelockCheck({
    image: "my/pipelock:1",
    fromEnv: true,
    local: false,
    pull: { ok: false, reason: "x" },
    otherBundles: [],
  });
  assert.match(fromEnv.detail, /^my\/pipelock:1 \(from BOTTLE_PIPELOCK_IMAGE\)/);
  assert.match(fromEnv.fix ?? "", /make my\/pipelock:1 present here/);
});

Deno.test("pipelock image: not required once this bottle's bundle image is built", () => {
  const c = pipelockCheck({
    image: PINNED,
    fromEnv: false,
    local: false,
    pull: { ok: false, reason: "no such host" },
    bundleBuilt: "bottle/bundle:0123456789abcdef",
    otherBundles: [],
  });
  assert.equal(c.ok, true);
  assert.equal(c.required, false);
  assert.match(c.detail, /^not needed now: this bottle's bundle image bottle\/bundle:0123/);
  assert.match(c.fix ?? "", /BOTTLE_PIPELOCK_IMAGE/);
});

/** A docker CLI that answers doctor's calls as Docker Desktop with nothing pulled would. */
const FAKE_DOCKER = `#!/bin/sh
case "$1 $2" in
  "version --format") echo 27.4.0 ;;
  "info --format") cat "$(dirname "$0")/info.json" ;;
  "context inspect") cat "$(dirname "$0")/context.json" ;;
  "image inspect") echo "Error: No such image: $5" >&2; exit 1 ;;
  "image ls") echo "bottle/bundle:03cd33159305093d" ;;
  "manifest inspect") echo "failed to configure transport: no such host" >&2; exit 1 ;;
  *) echo "fake docker: unexpected $*" >&2; exit 3 ;;
esac
`;

Deno.test("doctor --json: the engine and pipelock checks, in the checks' JSON shape", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bottle-doctor-" });
  try {
    const d = FIXTURES["Docker Desktop on macOS"]!;
    await Deno.writeTextFile(join(dir, "info.json"), JSON.stringify(d.info));
    await Deno.writeTextFile(
      join(dir, "context.json"),
      JSON.stringify([{
        Name: d.context.name,
        Endpoints: { docker: { Host: d.context.endpoint } },
      }]),
    );
    const docker = join(dir, "docker");
    await Deno.writeTextFile(docker, FAKE_DOCKER, { mode: 0o755 });
    const r = await cli(["doctor", "--json"], {
      env: { BOTTLE_DOCKER: docker, SMOLVM: "/nonexistent/smolvm" },
    });
    assert.equal(r.code, 1, r.stderr); // the pipelock image is required and missing
    const checks = JSON.parse(r.stdout) as Record<string, unknown>[];
    for (const c of checks) {
      assert.equal(typeof c.name, "string");
      assert.equal(typeof c.ok, "boolean");
      assert.equal(typeof c.required, "boolean");
      assert.equal(typeof c.detail, "string");
    }
    const by = (name: string) => checks.find((c) => c.name === name);
    assert.equal(by("engine kind")?.kind, "docker-desktop");
    assert.equal(by("smolmachines on this engine")?.ok, true);
    assert.match(String(by("smolmachines on this engine")?.detail), /as sockets smolvm mounts/);
    assert.match(
      String(by("CVE-2024-29018 (engine DNS from --internal networks)")?.detail),
      /not affected/,
    );
    const pipelock = by("pipelock image");
    assert.equal(pipelock?.ok, false);
    assert.equal(pipelock?.required, true);
    assert.match(String(pipelock?.detail), /cannot be pulled from here/);
    assert.match(String(pipelock?.fix), /BOTTLE_PIPELOCK_IMAGE/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
