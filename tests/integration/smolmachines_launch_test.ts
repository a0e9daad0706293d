/**
 * The smolmachines launch flow end to end: a real engine runs the bundle,
 * bottle's registry serves the real agent image, and the contract-faithful
 * fake smolvm (strict argv, a pack that really pulls and checks every
 * digest, machine state) stands in for the VM, each machine a container of
 * the image it was made from, so provisioning runs in a real guest.
 * Teardown is checked after a SIGINT at each launch step.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  bottle,
  bottleEnv,
  interruptAt,
  labelled,
  NOTHING,
  projectWith,
} from "../helpers/bottle_env.ts";
import { run } from "../../src/proc/runner.ts";
import { FAKE_SMOLVM, fakeSmolvm } from "../fakes/smolvm/test_helpers.ts";
import { pathExists } from "../../src/state/path_exists.ts";

const AGENT_FILE = `version: 1
agents:
  vmprobe:
    backend: smolmachines
    anthropic: none
    prompt: You are in a VM.
    resources: { cpus: 2, memory: 2g }
`;

function flagValues(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));
}

Deno.test("smolmachines: launch, reuse the packed image, stop, and teardown on SIGINT", async (t) => {
  await using fake = await fakeSmolvm({ dockerGuests: true });
  const cache = await Deno.makeTempDir({ prefix: "bottle-smol-cache-" });
  await using be = await bottleEnv({
    ...fake.env,
    SMOLVM: FAKE_SMOLVM,
    XDG_CACHE_HOME: cache,
  });
  const cwd = await projectWith(be, AGENT_FILE);
  try {
    await t.step(
      "start --detach packs the agent image through the registry and boots the VM",
      async () => {
        const r = await bottle(["start", "vmprobe", "--detach", "--name", "s1"], be.env, { cwd });
        assert.equal(r.code, 0, r.stderr);
        assert.match(
          r.stderr,
          /packing 127\.0\.0\.1:\d+\/bottle\/agent:[0-9a-f]{16} into a \.smolmachine/,
        );
        const log = await fake.log();
        const pack = log.find((a) => a[0] === "pack");
        assert.ok(pack, "no pack create");
        assert.match(pack[3]!, /^127\.0\.0\.1:\d+\/bottle\/agent:[0-9a-f]{16}$/);
        const create = log.find((a) => a[0] === "machine" && a[1] === "create")!;
        assert.deepEqual(flagValues(create, "--name").concat(flagValues(create, "-n")), [
          "bottle-vmprobe-s1",
        ]);
        const cidrs = flagValues(create, "--allow-cidr");
        assert.equal(cidrs.length, 1);
        assert.match(cidrs[0]!, /^\d+\.\d+\.\d+\.\d+\/32$/);
        assert.deepEqual(flagValues(create, "--allow-host"), ["bottle-dns-closed.invalid"]);
        const bundleIp = cidrs[0]!.replace("/32", "");
        const env = flagValues(create, "-e").concat(flagValues(create, "--env"));
        assert.ok(env.includes(`HTTPS_PROXY=http://${bundleIp}:3128`), env.join(" "));
        assert.deepEqual(flagValues(create, "--cpus"), ["2"]);
        assert.deepEqual(flagValues(create, "--mem"), ["2048"]);
        const machine = await fake.machine("bottle-vmprobe-s1");
        assert.equal(machine?.state, "running");
        // Provisioning ran in the guest through machine exec: the trust store and the prompt.
        const guest = fake.guestContainer("bottle-vmprobe-s1");
        const inGuest = async (...argv: string[]) =>
          (await run(["docker", "exec", guest, ...argv])).stdout;
        assert.match(
          await inGuest("cat", "/usr/local/share/ca-certificates/bottle.crt"),
          /BEGIN CERTIFICATE/,
        );
        assert.equal(await inGuest("cat", "/home/agent/.bottle/prompt.md"), "You are in a VM.");
        assert.equal(await inGuest("stat", "-c", "%U", "/home/agent/.bottle/prompt.md"), "agent\n");
        assert.ok(
          log.some((a) =>
            a.includes("exec") && a.includes("tee") &&
            a.includes("/etc/ssl/certs/ca-certificates.crt")
          ),
        );
        const ls = JSON.parse((await bottle(["ls", "--json"], be.env)).stdout) as {
          name: string;
          backend: string;
          state: string;
        }[];
        const row = ls.find((b) => b.name === "vmprobe-s1");
        assert.ok(row, `vmprobe-s1 not in bottle ls: ${JSON.stringify(ls)}`);
        assert.equal(row.backend, "smolmachines");
        assert.equal(row.state, "running");
      },
    );

    await t.step("a second start reuses the cached .smolmachine", async () => {
      const r = await bottle(["start", "vmprobe", "--detach", "--name", "s2"], be.env, { cwd });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /using cached .*\.smolmachine/);
      assert.equal((await fake.log()).filter((a) => a[0] === "pack").length, 1);
    });

    await t.step("stop removes the VM, the bundle, the network and the state", async () => {
      for (const name of ["vmprobe-s1", "vmprobe-s2"]) {
        const r = await bottle(["stop", name], be.env);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await fake.machine(`bottle-${name}`), undefined);
        assert.deepEqual(await labelled(`bottle.id=${name}`), NOTHING);
        assert.equal(await pathExists(join(be.stateRoot, "bottles", name)), false);
      }
    });

    const steps = [
      /creating the network/,
      /starting the bundle/,
      /creating the VM/,
      /starting the VM/,
      /provisioning/,
    ];
    for (const [i, step] of steps.entries()) {
      await t.step(`SIGINT during "${step.source}" leaves nothing behind`, async () => {
        const name = `int${i}`;
        const r = await interruptAt(
          ["start", "vmprobe", "--detach", "--name", name],
          be.env,
          cwd,
          step,
          "SIGINT",
        );
        assert.equal(r.code, 130, r.stderr);
        assert.equal(await fake.machine(`bottle-vmprobe-${name}`), undefined);
        assert.deepEqual(await labelled(`bottle.id=vmprobe-${name}`), NOTHING);
        assert.equal(await pathExists(join(be.stateRoot, "bottles", `vmprobe-${name}`)), false);
      });
    }

    await t.step("cleanup --cache prunes the cached .smolmachine", async () => {
      const dir = join(cache, "bottle", "smolmachines");
      assert.ok([...Deno.readDirSync(dir)].some((e) => e.name.endsWith(".smolmachine")));
      const r = await bottle(["cleanup", "--cache"], be.env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /removed .*\.smolmachine/);
      assert.deepEqual([...Deno.readDirSync(dir)], []);
    });

    await t.step("where pack fails, the VM is created from the archive on stdin", async () => {
      const r = await bottle(["start", "vmprobe", "--detach", "--name", "fb"], {
        ...be.env,
        FAKE_SMOLVM_FAIL: "pack",
      }, { cwd });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /creating the VM from the archive on stdin/);
      const create = (await fake.log()).findLast((a) => a[0] === "machine" && a[1] === "create")!;
      assert.deepEqual(flagValues(create, "--image"), ["-"]);
      assert.equal((await fake.machine("bottle-vmprobe-fb"))?.state, "running");
      assert.equal((await bottle(["stop", "vmprobe-fb"], be.env)).code, 0);
      const leftovers = [...Deno.readDirSync(join(cache, "bottle", "smolmachines"))].map((e) =>
        e.name
      );
      assert.deepEqual(leftovers.filter((n) => n.endsWith(".tar")), []);
    });

    await t.step("a smolvm that cannot enforce the egress policy is refused", async () => {
      const r = await bottle(["start", "vmprobe", "--name", "old"], {
        ...be.env,
        FAKE_SMOLVM_VERSION: "0.8.0",
      }, { cwd });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /0\.8\.0.*1\.1\.0/);
      assert.deepEqual(await labelled("bottle.id=vmprobe-old"), NOTHING);
    });
  } finally {
    await bottle(["cleanup", "--all"], be.env);
    await Deno.remove(cache, { recursive: true }).catch(() => {});
  }
});
