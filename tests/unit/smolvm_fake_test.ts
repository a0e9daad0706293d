/**
 * The fake smolvm holds bottle's smolvm tests to the contract, so the fake
 * itself is tested here: strict argv checking, the delete trap, state, exec,
 * cp, docker save archives and a real registry pull for `pack create`.
 */
import assert from "node:assert/strict";
import { insecureAllowed, parseRef } from "../fakes/smolvm/fake_registry_pull.ts";
import {
  fakeSmolvm,
  legacyDockerSave,
  makeTar,
  ociDockerSave,
  testRegistry,
} from "../fakes/smolvm/test_helpers.ts";

const enc = new TextEncoder();

async function created(f: Awaited<ReturnType<typeof fakeSmolvm>>, name: string, start = false) {
  const res = await f.run(["machine", "create", "--name", name, "--image", "alpine:3"]);
  assert.equal(res.code, 0, res.stderr);
  if (start) {
    const s = await f.run(["machine", "start", "--name", name]);
    assert.equal(s.code, 0, s.stderr);
  }
}

Deno.test("fake --version prints smolvm X.Y.Z, default 1.9.3, or FAKE_SMOLVM_VERSION", async () => {
  await using f = await fakeSmolvm();
  assert.equal((await f.run(["--version"])).stdout, "smolvm 1.9.3\n");
  await using old = await fakeSmolvm({ version: "0.8.0" });
  assert.equal((await old.run(["--version"])).stdout, "smolvm 0.8.0\n");
});

Deno.test("fake rejects a positional machine name like smolvm >= 1.0.2 (Error:, exit 1)", async () => {
  await using f = await fakeSmolvm();
  await created(f, "vm1");
  for (
    const args of [
      ["machine", "create", "myvm", "--image", "alpine"],
      ["machine", "start", "vm1"],
      ["machine", "stop", "vm1"],
      ["machine", "delete", "-f", "vm1"],
      ["machine", "status", "vm1", "--json"],
    ]
  ) {
    const res = await f.run(args);
    assert.equal(res.code, 1, `${args.join(" ")}: ${res.stderr}`);
    assert.match(res.stderr, /^Error: unexpected argument '(myvm|vm1)'.*-n\/--name/);
  }
  assert.equal(await f.machine("myvm"), undefined);
  assert.ok(await f.machine("vm1"), "vm1 must survive the positional delete");
});

Deno.test("fake machine exec: -n is refused, --name works", async () => {
  await using f = await fakeSmolvm();
  await created(f, "vm1", true);
  const bad = await f.run(["machine", "exec", "-n", "vm1", "--", "true"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /'-n'/);
  assert.match(bad.stderr, /--name/);
  const good = await f.run(["machine", "exec", "--name", "vm1", "--", "echo", "ok"]);
  assert.deepEqual([good.code, good.stdout], [0, "ok\n"]);
});

Deno.test("fake machine exec requires -- before the command", async () => {
  await using f = await fakeSmolvm();
  await created(f, "vm1", true);
  const noDash = await f.run(["machine", "exec", "--name", "vm1", "echo", "hi"]);
  assert.equal(noDash.code, 2);
  assert.match(noDash.stderr, /'echo'/);
  assert.match(noDash.stderr, /'--'/);
  const empty = await f.run(["machine", "exec", "--name", "vm1", "--"]);
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /COMMAND/);
  // Flags after -- belong to the guest command.
  const flags = await f.run(["machine", "exec", "--name", "vm1", "--", "echo", "-n", "x"]);
  assert.deepEqual([flags.code, flags.stdout], [0, "x"]);
});

Deno.test("fake fails loudly (exit 2, names the argument) on unknown flags and subcommands", async () => {
  await using f = await fakeSmolvm();
  const cases: [string[], RegExp][] = [
    [["machine", "create", "--name", "a", "--image", "x", "--bogus"], /'--bogus'/],
    [["machine", "create", "--name", "a", "--image", "x", "-z"], /'-z'/],
    [["machine", "create", "--name", "a", "--image", "x", "--net"], /'--net'/],
    [["machine", "frobnicate"], /'frobnicate'/],
    [["frobnicate"], /'frobnicate'/],
    [["pack", "push"], /'push'/],
    [["machine", "delete", "--name", "a", "--cascade"], /'--cascade'/],
    [["machine", "cp", "--mode", "644", "a", "b:/c"], /'--mode'/],
    [["machine", "create", "--name", "a", "--image"], /'--image <VALUE>'/],
    [["machine", "create", "--name", "a", "--image", "x", "--cpus", "two"], /'two'/],
    [["machine", "create", "--name", "a", "--image", "x", "--", "sh"], /'--'/],
  ];
  for (const [args, re] of cases) {
    const res = await f.run(args);
    assert.equal(res.code, 2, `${args.join(" ")}: ${res.stderr}`);
    assert.match(res.stderr, re, args.join(" "));
  }
  assert.equal(await f.machine("a"), undefined);
});

Deno.test("fake delete without -f and no stdin prints Cancelled, exits 0 and deletes nothing", async () => {
  await using f = await fakeSmolvm();
  await created(f, "vm1");
  const res = await f.run(["machine", "delete", "--name", "vm1"]);
  assert.equal(res.code, 0);
  assert.match(res.stdout, /^Cancelled$/m);
  assert.ok(await f.machine("vm1"));
  const no = await f.run(["machine", "delete", "--name", "vm1"], { stdin: "n\n" });
  assert.match(no.stdout, /Cancelled/);
  assert.ok(await f.machine("vm1"));
  const yes = await f.run(["machine", "delete", "--name", "vm1"], { stdin: "y\n" });
  assert.equal(yes.code, 0);
  assert.equal(await f.machine("vm1"), undefined);
});

Deno.test("fake delete -f removes a running machine and its guest root", async () => {
  await using f = await fakeSmolvm();
  await created(f, "vm1", true);
  const res = await f.run(["machine", "delete", "--name", "vm1", "-f"]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(await f.machine("vm1"), undefined);
  await assert.rejects(Deno.stat(f.guestRoot("vm1")), Deno.errors.NotFound);
  const again = await f.run(["machine", "delete", "--name", "vm1", "-f"]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^Error: vm not found: vm1/);
});

Deno.test("fake create records the policy; any egress policy means virtio-net", async () => {
  await using f = await fakeSmolvm();
  const res = await f.run([
    "machine",
    "create",
    "-n",
    "vm1",
    "-I",
    "alpine:3",
    "--cpus",
    "2",
    "--mem",
    "1024",
    "--allow-cidr",
    "172.30.0.2/32",
    "--allow-host",
    "bundle.internal",
    "-e",
    "A=1",
    "--env=B=two=2",
  ]);
  assert.equal(res.code, 0, res.stderr);
  const m = await f.machine("vm1");
  assert.equal(m?.state, "created");
  assert.equal(m?.image, "alpine:3");
  assert.deepEqual(m?.allowCidrs, ["172.30.0.2/32"]);
  assert.deepEqual(m?.allowHosts, ["bundle.internal"]);
  assert.deepEqual(m?.env, ["A=1", "B=two=2"]);
  assert.equal(m?.cpus, 2);
  assert.equal(m?.mem, 1024);
  assert.deepEqual(m?.network, {
    backend: "virtio-net",
    guestIp: "100.96.0.2",
    gateway: "100.96.0.1",
  });
  const plain = await f.run(["machine", "create", "-n", "vm2", "-I", "alpine"]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal((await f.machine("vm2"))?.network, null);
  const dup = await f.run(["machine", "create", "-n", "vm1", "-I", "alpine"]);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /^Error: .*machine 'vm1' already exists/);
  const badCidr = await f.run([
    "machine",
    "create",
    "-n",
    "vm3",
    "-I",
    "a",
    "--allow-cidr",
    "1.2.3.4",
  ]);
  assert.equal(badCidr.code, 2);
  assert.match(badCidr.stderr, /'1\.2\.3\.4'/);
});

Deno.test("fake create --image - reads a docker save archive from stdin (legacy and OCI layout)", async () => {
  await using f = await fakeSmolvm();
  const legacy = await f.run(["machine", "create", "-n", "legacy", "--image", "-"], {
    stdin: legacyDockerSave(),
  });
  assert.equal(legacy.code, 0, legacy.stderr);
  const lm = await f.machine("legacy");
  assert.match(String(lm?.image), /^local:sha256:[0-9a-f]{64}$/);
  assert.equal((lm?.imageArchive as { kind: string }).kind, "docker-legacy");
  const oci = await f.run(["machine", "create", "-n", "oci", "--image", "-"], {
    stdin: ociDockerSave(),
  });
  assert.equal(oci.code, 0, oci.stderr);
  assert.equal(((await f.machine("oci"))?.imageArchive as { kind: string }).kind, "oci-layout");
});

Deno.test("fake create --image - refuses what is not a docker save archive", async () => {
  await using f = await fakeSmolvm();
  const cases: [Uint8Array | string, RegExp][] = [
    ["", /empty input/],
    ["this is not a tar archive at all, just some text".repeat(20), /not a tar archive/],
    [makeTar([{ name: "hello.txt", data: "hi" }]), /no top-level manifest\.json or index\.json/],
    [legacyDockerSave().subarray(0, 700), /truncated|not a tar/],
  ];
  for (const [stdin, re] of cases) {
    const res = await f.run(["machine", "create", "-n", "x", "--image", "-"], { stdin });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /^Error: /);
    assert.match(res.stderr, re);
  }
  assert.equal(await f.machine("x"), undefined);
});

Deno.test("fake create --image ./x.tar reads the archive from a file", async () => {
  await using f = await fakeSmolvm();
  await Deno.writeFile(`${f.dir}/img.tar`, legacyDockerSave());
  const res = await f.run(["machine", "create", "-n", "vm1", "--image", `${f.dir}/img.tar`]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(((await f.machine("vm1"))?.imageArchive as { kind: string }).kind, "docker-legacy");
  const missing = await f.run(["machine", "create", "-n", "vm2", "--image", "./nope.tar"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^Error: image source not found/);
});

Deno.test("fake start/stop/status/ls track state in smolvm's JSON shape", async () => {
  await using f = await fakeSmolvm();
  assert.equal((await f.run(["machine", "ls", "--json"])).stdout.trim(), "[]");
  await created(f, "vm1");
  const status = async () =>
    JSON.parse((await f.run(["machine", "status", "--name", "vm1", "--json"])).stdout);
  assert.equal((await status()).state, "created");
  await f.run(["machine", "start", "--name", "vm1"]);
  const running = await status();
  assert.equal(running.state, "running");
  assert.equal(typeof running.pid, "number");
  assert.equal(running.memory_mib, 8192);
  await f.run(["machine", "stop", "-n", "vm1"]);
  assert.equal((await status()).state, "stopped");
  const stopAgain = await f.run(["machine", "stop", "-n", "vm1"]);
  assert.equal(stopAgain.code, 0, "stop of a stopped machine is a no-op");
  const ls = JSON.parse((await f.run(["machine", "ls", "--json"])).stdout);
  assert.deepEqual(ls.map((m: { name: string; state: string }) => [m.name, m.state]), [
    ["vm1", "stopped"],
  ]);
  const missing = await f.run(["machine", "status", "-n", "nope", "--json"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^Error: .*machine 'nope' not found/);
  const startMissing = await f.run(["machine", "start", "-n", "nope"]);
  assert.match(startMissing.stderr, /^Error: vm not found: nope/);
});

Deno.test("fake FAKE_SMOLVM_FAIL=start leaves the machine failed", async () => {
  await using f = await fakeSmolvm({ fail: "start" });
  await created(f, "vm1");
  const res = await f.run(["machine", "start", "-n", "vm1"]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /^Error: .*injected failure/);
  assert.equal((await f.machine("vm1"))?.state, "failed");
});

Deno.test("fake exec: machine must run; guest env is only create + exec -e; stdin only with -i", async () => {
  await using f = await fakeSmolvm();
  const c = await f.run(["machine", "create", "-n", "vm1", "-I", "alpine", "-e", "FROM_CREATE=1"]);
  assert.equal(c.code, 0, c.stderr);
  const notRunning = await f.run(["machine", "exec", "--name", "vm1", "--", "true"]);
  assert.equal(notRunning.code, 1);
  assert.match(notRunning.stderr, /^Error: machine 'vm1' is not running/);
  const missing = await f.run(["machine", "exec", "--name", "nope", "--", "true"]);
  assert.match(missing.stderr, /^Error: vm not found: nope/);
  await f.run(["machine", "start", "-n", "vm1"]);

  const env = await f.run(
    ["machine", "exec", "--name", "vm1", "-e", "FROM_EXEC=2", "--", "sh", "-c", "env"],
    { env: { HOST_ONLY: "leak" } },
  );
  assert.equal(env.code, 0, env.stderr);
  assert.match(env.stdout, /^FROM_CREATE=1$/m);
  assert.match(env.stdout, /^FROM_EXEC=2$/m);
  assert.doesNotMatch(env.stdout, /HOST_ONLY|FAKE_SMOLVM_LOG/);

  const noI = await f.run(["machine", "exec", "--name", "vm1", "--", "cat"], { stdin: "hidden" });
  assert.equal(noI.stdout, "");
  const withI = await f.run(["machine", "exec", "--name", "vm1", "-i", "--", "cat"], {
    stdin: "shown",
  });
  assert.equal(withI.stdout, "shown");

  const code = await f.run(["machine", "exec", "--name", "vm1", "--", "sh", "-c", "exit 7"]);
  assert.equal(code.code, 7);
  const wd = await f.run(["machine", "exec", "--name", "vm1", "-w", "/work", "--", "pwd"]);
  assert.equal(wd.stdout.trim(), `${await Deno.realPath(f.guestRoot("vm1"))}/work`);
  const noProg = await f.run(["machine", "exec", "--name", "vm1", "--", "no-such-program-xyz"]);
  assert.equal(noProg.code, 1);
  assert.match(noProg.stderr, /^Error: .*No such file or directory/);
});

Deno.test("fake cp copies one file into the guest root and records it", async () => {
  await using f = await fakeSmolvm();
  await created(f, "vm1");
  await Deno.writeTextFile(`${f.dir}/prompt.txt`, "be nice\n");
  const stopped = await f.run(["machine", "cp", `${f.dir}/prompt.txt`, "vm1:/etc/prompt.txt"]);
  assert.equal(stopped.code, 1);
  assert.match(stopped.stderr, /not running/);
  await f.run(["machine", "start", "-n", "vm1"]);
  const ok = await f.run(["machine", "cp", `${f.dir}/prompt.txt`, "vm1:/etc/prompt.txt"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(await Deno.readTextFile(`${f.guestRoot("vm1")}/etc/prompt.txt`), "be nice\n");
  const files = (await f.machine("vm1"))?.files as Record<string, { size: number }>;
  assert.equal(files["/etc/prompt.txt"]?.size, 8);
  const dir = await f.run(["machine", "cp", f.dir, "vm1:/etc/d"]);
  assert.equal(dir.code, 1);
  assert.match(dir.stderr, /Is a directory/);
  const noMachine = await f.run(["machine", "cp", `${f.dir}/prompt.txt`, `${f.dir}/other`]);
  assert.equal(noMachine.code, 1);
  assert.match(noMachine.stderr, /machine:path/);
  const three = await f.run(["machine", "cp", "a", "b", "vm1:/c"]);
  assert.equal(three.code, 2);
});

Deno.test("fake logs every invocation's argv, including rejected ones", async () => {
  await using f = await fakeSmolvm();
  await f.run(["--version"]);
  await f.run(["machine", "bogus", "--x"]);
  assert.deepEqual(await f.log(), [["--version"], ["machine", "bogus", "--x"]]);
});

Deno.test("fake pack create pulls an OCI image from a local registry and writes STUB.smolmachine", async () => {
  await using f = await fakeSmolvm();
  await using reg = testRegistry();
  const img = await reg.addImage("bottle/agent", "v1", [
    enc.encode("layer one"),
    enc.encode("layer two"),
  ]);
  const stub = `${f.dir}/agent`;
  const res = await f.run(["pack", "create", "--image", `${reg.host}/bottle/agent:v1`, "-o", stub]);
  assert.equal(res.code, 0, res.stderr);
  const side = JSON.parse(await Deno.readTextFile(`${stub}.smolmachine`));
  assert.equal(side.format, "fake-smolmachine/1");
  assert.equal(side.scheme, "http", "https fails against the plain registry, so http is used");
  assert.equal(side.manifest.digest, img.manifestDigest);
  assert.equal(side.config.digest, img.configDigest);
  assert.deepEqual(side.layers.map((l: { digest: string }) => l.digest), img.layerDigests);
  assert.ok((await Deno.stat(stub)).isFile, "the packed executable stub is written too");
  assert.deepEqual(reg.requests.filter((r) => r.includes("/blobs/")).length, 3);
  // The result boots: machine create --from accepts it.
  const c = await f.run(["machine", "create", "-n", "vm1", "--from", `${stub}.smolmachine`]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal((await f.machine("vm1"))?.image, `${reg.host}/bottle/agent:v1`);
});

Deno.test("fake pack create handles Docker schema2 and picks linux/amd64 from an index", async () => {
  await using f = await fakeSmolvm();
  await using reg = testRegistry();
  const docker = await reg.addImage("d/img", "1", [enc.encode("x")], { format: "docker" });
  const r1 = await f.run(["pack", "create", "-I", `${reg.host}/d/img:1`, "-o", `${f.dir}/d`]);
  assert.equal(r1.code, 0, r1.stderr);
  const s1 = JSON.parse(await Deno.readTextFile(`${f.dir}/d.smolmachine`));
  assert.equal(s1.manifest.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
  assert.equal(s1.manifest.digest, docker.manifestDigest);

  for (const format of ["oci", "docker"] as const) {
    const idx = await reg.addImage(`i/${format}`, "multi", [enc.encode("y")], {
      format,
      index: true,
    });
    const r2 = await f.run([
      "pack",
      "create",
      "-I",
      `${reg.host}/i/${format}:multi`,
      "-o",
      `${f.dir}/i`,
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    const s2 = JSON.parse(await Deno.readTextFile(`${f.dir}/i.smolmachine`));
    assert.equal(s2.index.digest, idx.digest);
    assert.equal(s2.manifest.digest, idx.manifestDigest);
    assert.equal(s2.platform, "linux/amd64");
  }
  // By digest too.
  const r3 = await f.run([
    "pack",
    "create",
    "-I",
    `${reg.host}/d/img@${docker.manifestDigest}`,
    "-o",
    `${f.dir}/g`,
  ]);
  assert.equal(r3.code, 0, r3.stderr);
});

Deno.test("fake pack create fails with digest mismatch on a corrupted blob", async () => {
  await using f = await fakeSmolvm();
  await using reg = testRegistry();
  const img = await reg.addImage("bottle/agent", "v1", [enc.encode("good"), enc.encode("bytes")]);
  reg.corrupt(img.layerDigests[1]!);
  const stub = `${f.dir}/agent`;
  const res = await f.run(["pack", "create", "--image", `${reg.host}/bottle/agent:v1`, "-o", stub]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /^Error: digest mismatch for layer 2\/2 /);
  assert.ok(res.stderr.includes(img.layerDigests[1]!));
  await assert.rejects(Deno.stat(`${stub}.smolmachine`), Deno.errors.NotFound);
});

Deno.test("fake pack create reports a missing tag or blob (404) and refuses a non-registry image", async () => {
  await using f = await fakeSmolvm();
  await using reg = testRegistry();
  const img = await reg.addImage("bottle/agent", "v1", [enc.encode("layer")]);
  reg.drop(img.layerDigests[0]!);
  const blob = await f.run([
    "pack",
    "create",
    "--image",
    `${reg.host}/bottle/agent:v1`,
    "-o",
    `${f.dir}/b`,
  ]);
  assert.equal(blob.code, 1);
  assert.match(blob.stderr, /^Error: pull image: GET .*\/blobs\/sha256:[0-9a-f]{64}: 404/);
  const res = await f.run([
    "pack",
    "create",
    "--image",
    `${reg.host}/nope/x:v1`,
    "-o",
    `${f.dir}/x`,
  ]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /^Error: pull image: GET .*\/v2\/nope\/x\/manifests\/v1: 404/);
  const local = await f.run(["pack", "create", "--image", "-", "-o", `${f.dir}/x`]);
  assert.equal(local.code, 1);
  assert.match(local.stderr, /not a registry reference/);
});

Deno.test("fake registry refs: parsing and crane's plain-http rule", () => {
  assert.deepEqual(parseRef("127.0.0.1:5000/bottle/agent:v1"), {
    host: "127.0.0.1:5000",
    repo: "bottle/agent",
    reference: "v1",
  });
  assert.deepEqual(parseRef("alpine"), {
    host: "registry-1.docker.io",
    repo: "library/alpine",
    reference: "latest",
  });
  assert.equal(
    parseRef(`localhost:5000/a@sha256:${"0".repeat(64)}`).reference,
    `sha256:${"0".repeat(64)}`,
  );
  for (
    const h of [
      "localhost:5000",
      "127.0.0.1:1",
      "10.1.2.3",
      "172.20.0.1:5000",
      "192.168.1.1",
      "[::1]:5000",
    ]
  ) {
    assert.ok(insecureAllowed(h), h);
  }
  for (const h of ["ghcr.io", "172.32.0.1", "8.8.8.8:5000", "registry.local:5000"]) {
    assert.ok(!insecureAllowed(h), h);
  }
});
