/**
 * The smolvm wrapper against the contract-faithful fake: the argv of every
 * call (read back from the fake's invocation log), typed errors, the version
 * gate, the delete trap and refusing secrets on argv.
 */
import assert from "node:assert/strict";
import {
  compareVersions,
  MachineExistsError,
  MachineNotFoundError,
  MachineNotRunningError,
  MIN_SMOLVM_VERSION,
  MOUNT_SOCKET_SMOLVM_VERSION,
  parseSmolvmVersion,
  SmolvmCli,
} from "../../src/backends/smolvm/smolvm_cli.ts";
import { machineErrorClass } from "../../src/backends/smolvm/smolvm_errors.ts";
import { UserError } from "../../src/errors.ts";
import { CommandError } from "../../src/proc/runner.ts";
import { clearSecrets, registerSecret } from "../../src/proc/secrets.ts";
import {
  FAKE_SMOLVM,
  fakeSmolvm,
  type FakeSmolvmOptions,
  legacyDockerSave,
  testRegistry,
} from "../fakes/smolvm/test_helpers.ts";

async function setup(options: FakeSmolvmOptions = {}) {
  const fake = await fakeSmolvm(options);
  const cli = new SmolvmCli({ binary: FAKE_SMOLVM, env: fake.env });
  return { fake, cli, [Symbol.asyncDispose]: () => fake[Symbol.asyncDispose]() };
}

async function lastArgv(fake: { log(): Promise<string[][]> }): Promise<string[]> {
  const log = await fake.log();
  assert.ok(log.length > 0, "smolvm was never run");
  return log[log.length - 1]!;
}

async function createStarted(cli: SmolvmCli, name: string): Promise<void> {
  await cli.machineCreate({ name, image: "alpine:3" });
  await cli.machineStart({ name });
}

Deno.test("version parses `smolvm X.Y.Z` and assertSupported accepts 1.2.0 and 1.1.0", async () => {
  await using t = await setup({ version: "1.2.0" });
  assert.deepEqual(await t.cli.version(), {
    major: 1,
    minor: 2,
    patch: 0,
    prerelease: "",
    text: "1.2.0",
  });
  assert.deepEqual(await lastArgv(t.fake), ["--version"]);
  assert.equal((await t.cli.assertSupported()).text, "1.2.0");
  await using min = await setup({ version: MIN_SMOLVM_VERSION });
  assert.equal((await min.cli.assertSupported()).text, "1.1.0");
});

Deno.test("assertSupported refuses smolvm 0.8.0 with a UserError naming found and needed versions", async () => {
  for (const version of ["0.8.0", "1.0.9", "1.1.0-rc.1"]) {
    await using t = await setup({ version });
    const err = await t.cli.assertSupported().then(() => undefined, (e) => e);
    assert.ok(err instanceof UserError, `${version}: ${err}`);
    assert.equal(err.exitCode, 2);
    assert.ok(err.message.includes(`"${version}"`), err.message);
    assert.ok(err.message.includes(MIN_SMOLVM_VERSION), err.message);
    assert.match(err.message, /--allow-cidr/);
  }
});

Deno.test("assertSupported turns a missing smolvm into a UserError", async () => {
  const cli = new SmolvmCli({ binary: "/nonexistent/smolvm" });
  const err = await cli.assertSupported().then(() => undefined, (e) => e);
  assert.ok(err instanceof UserError, String(err));
  assert.match(err.message, /\/nonexistent\/smolvm/);
  assert.match(err.message, /\$SMOLVM/);
});

Deno.test("the binary comes from the invocation's env through the seam, never Deno.env", async () => {
  const { enginesFrom } = await import("../../src/backends/engines.ts");
  const saved = Deno.env.get("SMOLVM");
  try {
    Deno.env.set("SMOLVM", "/from/process/env");
    assert.equal(new SmolvmCli().binary, "smolvm");
    assert.equal(new SmolvmCli({ binary: "/x" }).binary, "/x");
    assert.equal(
      enginesFrom({ SMOLVM: "/opt/smolvm/bin/smolvm" }).smolvm.binary,
      "/opt/smolvm/bin/smolvm",
    );
    assert.equal(enginesFrom({}).smolvm.binary, "smolvm");
    assert.equal(enginesFrom({ BOTTLE_DOCKER: "/opt/docker" }).docker.bin, "/opt/docker");
  } finally {
    if (saved === undefined) Deno.env.delete("SMOLVM");
    else Deno.env.set("SMOLVM", saved);
  }
});

Deno.test("parseSmolvmVersion and compareVersions", () => {
  assert.equal(parseSmolvmVersion("smolvm 1.7.5\n")?.text, "1.7.5");
  assert.equal(parseSmolvmVersion("smolvm v1.1.0-rc.1 (abc123)")?.prerelease, "rc.1");
  assert.equal(parseSmolvmVersion("something else 1.2.3"), undefined);
  const v = (s: string) => parseSmolvmVersion(`smolvm ${s}`)!;
  assert.equal(compareVersions(v("1.1.0"), "1.1.0"), 0);
  assert.equal(compareVersions(v("1.10.0"), "1.9.9"), 1);
  assert.equal(compareVersions(v("0.8.0"), "1.1.0"), -1);
  assert.equal(compareVersions(v("1.1.0-rc.1"), "1.1.0"), -1);
  assert.equal(compareVersions(v("1.1.1"), "1.1.0"), 1);
});

Deno.test("machineCreate: argv for image, egress policy, env and resources", async () => {
  await using t = await setup();
  await t.cli.machineCreate({
    name: "bottle-claude-1",
    image: "127.0.0.1:5000/bottle/agent:v1",
    allowCidrs: ["172.30.0.2/32"],
    allowHosts: ["bundle.internal"],
    env: { HTTPS_PROXY: "http://172.30.0.2:9099", NO_PROXY: "localhost" },
    cpus: 2,
    memoryMib: 2048,
  });
  assert.deepEqual(await lastArgv(t.fake), [
    "machine",
    "create",
    "--name",
    "bottle-claude-1",
    "--image",
    "127.0.0.1:5000/bottle/agent:v1",
    "--cpus",
    "2",
    "--mem",
    "2048",
    "--allow-cidr",
    "172.30.0.2/32",
    "--allow-host",
    "bundle.internal",
    "-e",
    "HTTPS_PROXY=http://172.30.0.2:9099",
    "-e",
    "NO_PROXY=localhost",
  ]);
  const m = await t.fake.machine("bottle-claude-1");
  assert.equal(m?.state, "created");
  assert.deepEqual(m?.allowCidrs, ["172.30.0.2/32"]);
  assert.deepEqual(m?.env, ["HTTPS_PROXY=http://172.30.0.2:9099", "NO_PROXY=localhost"]);
  assert.equal((m?.network as { backend: string }).backend, "virtio-net");
});

Deno.test("machineCreate: --mount-socket for each socket, no network without an egress policy", async () => {
  await using t = await setup();
  await t.cli.machineCreate({
    name: "vm-sockets",
    image: "alpine:3",
    mountSockets: [
      { host: "/state/relay/egress.sock", guest: "/run/bottle/sockets/egress.sock" },
      { host: "/state/relay/git-gate.sock", guest: "/run/bottle/sockets/git-gate.sock" },
    ],
  });
  assert.deepEqual(await lastArgv(t.fake), [
    "machine",
    "create",
    "--name",
    "vm-sockets",
    "--image",
    "alpine:3",
    "--mount-socket",
    "/state/relay/egress.sock:/run/bottle/sockets/egress.sock",
    "--mount-socket",
    "/state/relay/git-gate.sock:/run/bottle/sockets/git-gate.sock",
  ]);
  const m = await t.fake.machine("vm-sockets");
  assert.equal(m?.network, null);
  assert.deepEqual(m?.mountSockets, [
    { host: "/state/relay/egress.sock", guest: "/run/bottle/sockets/egress.sock" },
    { host: "/state/relay/git-gate.sock", guest: "/run/bottle/sockets/git-gate.sock" },
  ]);
  // A smolvm before 1.6.4 has no such flag (clap refuses it), and bottle asks for it by version first.
  await using old = await setup({ version: "1.6.3" });
  const refused = await old.fake.run([
    "machine",
    "create",
    "--name",
    "x",
    "--image",
    "alpine:3",
    "--mount-socket",
    "/a.sock:/b.sock",
  ]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /unexpected argument '--mount-socket'/);
  const needs = {
    version: MOUNT_SOCKET_SMOLVM_VERSION,
    feature: "--mount-socket",
    why: "the VM needs it",
  };
  await assert.rejects(
    old.cli.assertSupported({ needs }),
    UserError,
    'smolvm "1.6.3" at "' + FAKE_SMOLVM +
      '" has no --mount-socket, which the VM needs it: it needs smolvm 1.6.4 or newer',
  );
  await using first = await setup({ version: "1.6.4" });
  assert.equal((await first.cli.assertSupported({ needs })).text, "1.6.4");
});

Deno.test("machineCreate: a docker save archive on stdin with --image -", async () => {
  await using t = await setup();
  const archive = legacyDockerSave();
  await t.cli.machineCreate({
    name: "vm1",
    image: "-",
    stdin: ReadableStream.from([archive.subarray(0, 1000), archive.subarray(1000)]),
    allowCidrs: ["10.0.0.2/32"],
  });
  assert.deepEqual(await lastArgv(t.fake), [
    "machine",
    "create",
    "--name",
    "vm1",
    "--image",
    "-",
    "--allow-cidr",
    "10.0.0.2/32",
  ]);
  const m = await t.fake.machine("vm1");
  assert.equal((m?.imageArchive as { bytes: number }).bytes, archive.length);
});

Deno.test("machineCreate: refuses impossible combinations before running smolvm", async () => {
  await using t = await setup();
  const bad = [
    { name: "a" },
    { name: "a", image: "x", from: "y.smolmachine" },
    { name: "a", image: "-" },
    { name: "a", image: "x", stdin: ReadableStream.from([new Uint8Array(1)]) },
    { name: "-n", image: "x" },
    { name: "a b", image: "x" },
    { name: "a", image: "x", cpus: 0 },
    { name: "a", image: "x", memoryMib: 1.5 },
    { name: "a", image: "x", env: { "BAD-NAME": "1" } },
    { name: "a", image: "x", allowCidrs: ["--net"] },
    { name: "a", image: "x", mountSockets: [{ host: "rel.sock", guest: "/g.sock" }] },
    { name: "a", image: "x", mountSockets: [{ host: "/a:b.sock", guest: "/g.sock" }] },
    { name: "a", image: "x", mountSockets: [{ host: "/h.sock", guest: "g.sock" }] },
    { name: "a", image: "x", mountSockets: [{ host: "/h.sock", guest: "/g;x.sock" }] },
    {
      name: "a",
      image: "x",
      mountSockets: [{ host: "/h.sock", guest: "/g.sock" }, { host: "/i.sock", guest: "/g.sock" }],
    },
  ];
  for (const o of bad) {
    await assert.rejects(t.cli.machineCreate(o), TypeError, JSON.stringify(o));
  }
  assert.deepEqual(await t.fake.log(), []);
});

Deno.test("machineCreate: a name that is taken is a MachineExistsError", async () => {
  await using t = await setup();
  await t.cli.machineCreate({ name: "vm1", image: "alpine" });
  const err = await t.cli.machineCreate({ name: "vm1", image: "alpine" }).then(() => 0, (e) => e);
  assert.ok(err instanceof MachineExistsError, String(err));
  assert.ok(err instanceof CommandError);
  assert.equal(err.machine, "vm1");
  assert.equal(err.code, 1);
  assert.match(err.message, /already exists/);
  assert.match(err.message, /smolvm machine create --name vm1/);
});

Deno.test("machineCreate refuses to put a registered secret on argv", async () => {
  await using t = await setup();
  registerSecret("sk-ant-supersecret-123");
  try {
    await assert.rejects(
      t.cli.machineCreate({
        name: "vm1",
        image: "alpine",
        env: { ANTHROPIC_API_KEY: "sk-ant-supersecret-123" },
      }),
      (e: Error) => /secret/.test(e.message) && !e.message.includes("supersecret"),
    );
    await assert.rejects(
      t.cli.machineExec({ name: "vm1", argv: ["echo", "sk-ant-supersecret-123"] }),
      /secret/,
    );
    assert.deepEqual(await t.fake.log(), [], "smolvm must never see the secret");
  } finally {
    clearSecrets();
  }
});

Deno.test("machineStart/Stop/Status/Ls: argv and typed states", async () => {
  await using t = await setup();
  await t.cli.machineCreate({ name: "vm1", image: "alpine" });
  const created = await t.cli.machineStatus("vm1");
  assert.deepEqual([created.name, created.state, created.raw.image], ["vm1", "created", "alpine"]);
  assert.deepEqual(await lastArgv(t.fake), ["machine", "status", "--name", "vm1", "--json"]);
  await t.cli.machineStart({ name: "vm1" });
  assert.deepEqual(await lastArgv(t.fake), ["machine", "start", "--name", "vm1"]);
  const running = await t.cli.machineStatus("vm1");
  assert.equal(running.state, "running");
  assert.equal(running.raw.memory_mib, 8192);
  await t.cli.machineStop({ name: "vm1" });
  assert.deepEqual(await lastArgv(t.fake), ["machine", "stop", "--name", "vm1"]);
  assert.equal((await t.cli.machineStatus("vm1")).state, "stopped");
  await t.cli.machineCreate({ name: "vm2", image: "alpine" });
  const ls = await t.cli.machineLs();
  assert.deepEqual(await lastArgv(t.fake), ["machine", "ls", "--json"]);
  assert.deepEqual(ls.map((m) => [m.name, m.state]), [["vm1", "stopped"], ["vm2", "created"]]);
});

Deno.test("machineLs of nothing is empty", async () => {
  await using t = await setup();
  assert.deepEqual(await t.cli.machineLs(), []);
});

Deno.test("calls on a machine that does not exist throw MachineNotFoundError", async () => {
  await using t = await setup();
  await Deno.writeTextFile(`${t.fake.dir}/f.txt`, "x");
  const calls: [string, () => Promise<unknown>][] = [
    ["start", () => t.cli.machineStart({ name: "ghost" })],
    ["stop", () => t.cli.machineStop({ name: "ghost" })],
    ["status", () => t.cli.machineStatus("ghost")],
    ["delete", () => t.cli.machineDelete({ name: "ghost" })],
    ["exec", () => t.cli.machineExec({ name: "ghost", argv: ["true"] })],
    ["cp", () => t.cli.machineCp(`${t.fake.dir}/f.txt`, "ghost", "/f.txt")],
  ];
  for (const [what, call] of calls) {
    const err = await call().then(() => undefined, (e) => e);
    assert.ok(err instanceof MachineNotFoundError, `${what}: ${err}`);
    assert.equal(err.machine, "ghost");
  }
});

Deno.test("a failed start surfaces as a CommandError, not a typed machine error", async () => {
  await using t = await setup({ fail: "start" });
  await t.cli.machineCreate({ name: "vm1", image: "alpine" });
  const err = await t.cli.machineStart({ name: "vm1" }).then(() => undefined, (e) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.ok(!(err instanceof MachineNotFoundError));
  assert.match(err.message, /injected failure/);
  assert.equal((await t.cli.machineStatus("vm1")).state, "failed");
});

Deno.test("machineDelete: always -f, deletes; missingOk makes an absent machine a no-op", async () => {
  await using t = await setup();
  await createStarted(t.cli, "vm1");
  await t.cli.machineDelete({ name: "vm1" });
  assert.deepEqual(await lastArgv(t.fake), ["machine", "delete", "--name", "vm1", "-f"]);
  assert.equal(await t.fake.machine("vm1"), undefined);
  await t.cli.machineDelete({ name: "vm1", missingOk: true });
  await assert.rejects(t.cli.machineDelete({ name: "vm1" }), MachineNotFoundError);
});

Deno.test("machineDelete treats a smolvm that prints Cancelled and exits 0 as a failure", async () => {
  await using t = await setup();
  const stub = `${t.fake.dir}/cancelling-smolvm`;
  await Deno.writeTextFile(stub, "#!/bin/sh\necho Cancelled\nexit 0\n", { mode: 0o755 });
  const cli = new SmolvmCli({ binary: stub });
  const err = await cli.machineDelete({ name: "vm1" }).then(() => undefined, (e) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.match(err.message, /did not delete machine "vm1"/);
  assert.match(err.message, /Cancelled/);
});

Deno.test("machineExec: argv with --name, -e, -w and --; output and exit code returned", async () => {
  await using t = await setup();
  await createStarted(t.cli, "vm1");
  const res = await t.cli.machineExec({
    name: "vm1",
    argv: ["sh", "-c", 'echo "out $GREETING"; pwd; echo err >&2; exit 3'],
    env: { GREETING: "hi" },
    workdir: "/work",
  });
  assert.deepEqual(await lastArgv(t.fake), [
    "machine",
    "exec",
    "--name",
    "vm1",
    "-e",
    "GREETING=hi",
    "-w",
    "/work",
    "--",
    "sh",
    "-c",
    'echo "out $GREETING"; pwd; echo err >&2; exit 3',
  ]);
  assert.equal(res.code, 3);
  assert.match(res.stdout, /^out hi\n.*\/work\n$/);
  assert.equal(res.stderr, "err\n");
});

Deno.test("machineExec: flags, stdin (-i), and guest output that looks like an error", async () => {
  await using t = await setup();
  await createStarted(t.cli, "vm1");
  const res = await t.cli.machineExec({ name: "vm1", argv: ["cat"], stdin: "piped in" });
  assert.deepEqual(await lastArgv(t.fake), ["machine", "exec", "--name", "vm1", "-i", "--", "cat"]);
  assert.equal(res.stdout, "piped in");
  await t.cli.machineExec({ name: "vm1", argv: ["true"], tty: true, stream: true });
  assert.deepEqual(await lastArgv(t.fake), [
    "machine",
    "exec",
    "--name",
    "vm1",
    "-t",
    "--stream",
    "--",
    "true",
  ]);
  // A guest command failing with smolvm-like words is the guest's result, not a machine error.
  const guest = await t.cli.machineExec({
    name: "vm1",
    argv: ["sh", "-c", "echo 'Error: file not found' >&2; exit 1"],
  });
  assert.equal(guest.code, 1);
  assert.match(guest.stderr, /Error: file not found/);
});

Deno.test("machineExec throws when smolvm rejects the argv instead of returning exit 2", async () => {
  await using t = await setup();
  await createStarted(t.cli, "vm1");
  // A smolvm that answers like clap does to a bad flag.
  const stub = `${t.fake.dir}/strict-smolvm`;
  await Deno.writeTextFile(
    stub,
    `#!/bin/sh\necho "error: unexpected argument '-x' found" >&2\n` +
      `echo "For more information, try '--help'." >&2\nexit 2\n`,
    { mode: 0o755 },
  );
  const cli = new SmolvmCli({ binary: stub });
  await assert.rejects(cli.machineExec({ name: "vm1", argv: ["true"] }), CommandError);
  // The guest's own exit 2 is still a result.
  const res = await t.cli.machineExec({
    name: "vm1",
    argv: ["sh", "-c", "echo 'error: x' >&2; exit 2"],
  });
  assert.equal(res.code, 2);
});

Deno.test("machineExec past timeoutMs throws a timed-out CommandError and ends the guest command", async () => {
  await using t = await setup();
  await createStarted(t.cli, "vm1");
  const marker = `${t.fake.dir}/still-running`;
  const started = Date.now();
  const err = await t.cli.machineExec({
    name: "vm1",
    argv: ["sh", "-c", `sleep 1; touch ${marker}`],
    timeoutMs: 300,
  }).then(() => undefined, (e) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.equal(err.timedOut, true);
  assert.ok(Date.now() - started < 1000);
  // Absence can only be checked by waiting past the moment it would appear.
  await new Promise((r) => setTimeout(r, 1300));
  await assert.rejects(
    Deno.stat(marker),
    Deno.errors.NotFound,
    "the guest command outlived smolvm",
  );
});

Deno.test("machineExec on a stopped machine throws MachineNotRunningError", async () => {
  await using t = await setup();
  await t.cli.machineCreate({ name: "vm1", image: "alpine" });
  const err = await t.cli.machineExec({ name: "vm1", argv: ["true"] }).then(() => 0, (e) => e);
  assert.ok(err instanceof MachineNotRunningError, String(err));
  assert.equal(err.machine, "vm1");
});

Deno.test("machineExecInteractive: -i (and -t when asked), inherited stdio, returns the code", async () => {
  await using t = await setup();
  await createStarted(t.cli, "vm1");
  const code = await t.cli.machineExecInteractive({
    name: "vm1",
    argv: ["sh", "-c", "exit 5"],
    tty: false,
    env: { TERM: "xterm" },
  });
  assert.equal(code, 5);
  assert.deepEqual(await lastArgv(t.fake), [
    "machine",
    "exec",
    "--name",
    "vm1",
    "-i",
    "-e",
    "TERM=xterm",
    "--",
    "sh",
    "-c",
    "exit 5",
  ]);
  await t.cli.machineExecInteractive({ name: "vm1", argv: ["true"], tty: true });
  assert.ok((await lastArgv(t.fake)).includes("-t"));
});

Deno.test("machineCp: `machine cp HOST NAME:/path`, one regular file", async () => {
  await using t = await setup();
  await createStarted(t.cli, "vm1");
  const host = `${t.fake.dir}/prompt.txt`;
  await Deno.writeTextFile(host, "system prompt\n");
  await t.cli.machineCp(host, "vm1", "/home/node/.prompt.txt");
  assert.deepEqual(await lastArgv(t.fake), ["machine", "cp", host, "vm1:/home/node/.prompt.txt"]);
  assert.equal(
    await Deno.readTextFile(`${t.fake.guestRoot("vm1")}/home/node/.prompt.txt`),
    "system prompt\n",
  );
  const before = (await t.fake.log()).length;
  await assert.rejects(t.cli.machineCp(t.fake.dir, "vm1", "/d"), /not a regular file/);
  await assert.rejects(t.cli.machineCp(host, "vm1", "relative/p"), /not absolute/);
  assert.equal((await t.fake.log()).length, before, "refused before running smolvm");
  await t.cli.machineStop({ name: "vm1" });
  await assert.rejects(t.cli.machineCp(host, "vm1", "/p"), MachineNotRunningError);
});

Deno.test("packCreate pulls from a registry and returns STUB.smolmachine; machineCreate --from boots it", async () => {
  await using t = await setup();
  await using reg = testRegistry();
  const enc = new TextEncoder();
  const img = await reg.addImage("bottle/agent", "v1", [enc.encode("one"), enc.encode("two")]);
  const stub = `${t.fake.dir}/agent`;
  const path = await t.cli.packCreate({ image: `${reg.host}/bottle/agent:v1`, output: stub });
  assert.equal(path, `${stub}.smolmachine`);
  assert.deepEqual(await lastArgv(t.fake), [
    "pack",
    "create",
    "--image",
    `${reg.host}/bottle/agent:v1`,
    "-o",
    stub,
  ]);
  const side = JSON.parse(await Deno.readTextFile(path));
  assert.equal(side.manifest.digest, img.manifestDigest);
  await t.cli.machineCreate({ name: "vm1", from: path, allowCidrs: ["10.0.0.2/32"] });
  assert.deepEqual(await lastArgv(t.fake), [
    "machine",
    "create",
    "--name",
    "vm1",
    "--from",
    path,
    "--allow-cidr",
    "10.0.0.2/32",
  ]);
  await assert.rejects(
    t.cli.packCreate({ image: "x", output: `${stub}.smolmachine` }),
    /appends "\.smolmachine"/,
  );
});

Deno.test("packCreate with a corrupted blob fails with smolvm's digest mismatch", async () => {
  await using t = await setup();
  await using reg = testRegistry();
  const img = await reg.addImage("bottle/agent", "v1", [new TextEncoder().encode("layer")]);
  reg.corrupt(img.layerDigests[0]!);
  const err = await t.cli.packCreate({
    image: `${reg.host}/bottle/agent:v1`,
    output: `${t.fake.dir}/agent`,
  }).then(() => undefined, (e) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.match(err.message, /digest mismatch/);
});

Deno.test("machineErrorClass reads only Error: lines that name the machine", () => {
  assert.equal(machineErrorClass("Error: vm not found: vm1\n", "vm1"), MachineNotFoundError);
  assert.equal(
    machineErrorClass(
      "Error: config operation failed: machine status: machine 'vm1' not found",
      "vm1",
    ),
    MachineNotFoundError,
  );
  assert.equal(
    machineErrorClass(
      "Error: config operation failed: create: machine 'vm1' already exists",
      "vm1",
    ),
    MachineExistsError,
  );
  assert.equal(
    machineErrorClass("Error: machine 'vm1' is not running", "vm1"),
    MachineNotRunningError,
  );
  assert.equal(
    machineErrorClass("Error: machine 'vm1' does not exist", "vm1"),
    MachineNotFoundError,
  );
  // Not about the machine: stays a plain CommandError.
  assert.equal(machineErrorClass("Error: vm not found: other", "vm1"), undefined);
  assert.equal(
    machineErrorClass("Error: create from .smolmachine: file not found: /t/vm1.smolmachine", "vm1"),
    undefined,
  );
  assert.equal(machineErrorClass("warning: vm1 not found in cache", "vm1"), undefined);
});
