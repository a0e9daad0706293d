import assert from "node:assert/strict";
import { pipelockStandin } from "../helpers/bottle_env.ts";
import { createHash } from "node:crypto";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { binaryPlatform, runtimeProblem, TARGETS } from "../../scripts/compile.ts";
import { parseReleaseArgs, readAssets, writeReleaseFiles } from "../../scripts/release.ts";
import { formulaText, installScriptText, sha256sumsText } from "../../scripts/release_files.ts";
import { run, type RunResult } from "../../src/proc/runner.ts";
import { VERSION } from "../../src/version.ts";

const RELEASE_TS = fileURLToPath(new URL("../../scripts/release.ts", import.meta.url));
const BASE = "https://example.test/bottle/releases/download/v9.9.9";
const ALL_ASSETS = Object.values(TARGETS);

/** Fake binaries: known bytes per asset. */
const FAKE = Object.fromEntries(
  ALL_ASSETS.map((a) => [a, new TextEncoder().encode(`#!/bin/sh\necho fake ${a}\n`)]),
);

function sha256(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function findProgram(name: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(delimiter)) {
    const p = join(dir, name);
    const st = await Deno.stat(p).catch(() => undefined);
    if (st?.isFile && (st.mode ?? 0o111) & 0o111) return p;
  }
  return undefined;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

async function tempDir(prefix = "bottle-release-test-") {
  const path = await Deno.makeTempDir({ prefix });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

async function readHead(path: string): Promise<Uint8Array> {
  return (await Deno.readFile(path)).subarray(0, 64);
}

/** The host as an asset platform ("linux-x64"), the way install.sh names it. */
const HOST_PLATFORM = `${Deno.build.os === "darwin" ? "macos" : Deno.build.os}-${
  Deno.build.arch === "x86_64" ? "x64" : "arm64"
}`;
const HOST_TARGET = Object.hasOwn(TARGETS, Deno.build.target) ? Deno.build.target : undefined;
const RUBY = await findProgram("ruby");
const SH = (await findProgram("sh")) ?? "/bin/sh";
/** Why `deno compile` cannot make a host binary here (what release.ts would say), or undefined. */
const COMPILE_PROBLEM = HOST_TARGET
  ? await runtimeProblem(HOST_TARGET)
  : `bottle has no release target for ${Deno.build.target}`;

/** A small executable of the host's platform, standing in for denort (deno compile wraps it). */
const FAKE_DENORT = await (async () => {
  const p = await findProgram("true");
  return p && binaryPlatform(await readHead(p)) === HOST_PLATFORM ? p : undefined;
})();

/** url and sha256 per "os-cpu" block of a formula (on_linux/on_intel -> "linux-intel"). */
function formulaBlocks(rb: string): Map<string, { url?: string; sha256?: string }> {
  const blocks = new Map<string, { url?: string; sha256?: string }>();
  let os = "";
  let cpu = "";
  for (const line of rb.split("\n")) {
    const m = /^ {2}on_(macos|linux) do$/.exec(line);
    if (m) [os, cpu] = [m[1]!, ""];
    const c = /^ {4}on_(arm|intel) do$/.exec(line);
    if (c) cpu = c[1]!;
    const kv = /^ {6}(url|sha256) "([^"]*)"$/.exec(line);
    if (kv) {
      const key = `${os}-${cpu}`;
      const b = blocks.get(key) ?? {};
      b[kv[1] as "url" | "sha256"] = kv[2]!;
      blocks.set(key, b);
    }
  }
  return blocks;
}

const BLOCK_OF: Record<string, string> = {
  "bottle-linux-x64": "linux-intel",
  "bottle-linux-arm64": "linux-arm",
  "bottle-macos-x64": "macos-intel",
  "bottle-macos-arm64": "macos-arm",
};

/** A dist dir holding fake binaries for `assets`, with the release files written for them. */
async function fakeDist(dir: string, assets: string[], baseUrl = BASE): Promise<void> {
  for (const a of assets) await Deno.writeFile(join(dir, a), FAKE[a]!);
  const read = await readAssets(assets.map((a) => join(dir, a)));
  await writeReleaseFiles(dir, read, "9.9.9", baseUrl);
}

// ---------------------------------------------------------------------------
// The formula and SHA256SUMS

Deno.test("release: bottle.rb and SHA256SUMS carry the url and sha256 of each built asset, and only those", async () => {
  await using dist = await tempDir();
  const built = ["bottle-linux-x64", "bottle-macos-arm64", "bottle-macos-x64"];
  await fakeDist(dist.path, built);

  const rb = await Deno.readTextFile(join(dist.path, "bottle.rb"));
  const blocks = formulaBlocks(rb);
  assert.deepEqual(
    [...blocks.keys()].sort(),
    built.map((a) => BLOCK_OF[a]!).sort(),
  );
  for (const a of built) {
    assert.deepEqual(blocks.get(BLOCK_OF[a]!), { url: `${BASE}/${a}`, sha256: sha256(FAKE[a]!) });
    assert.ok(rb.includes(`bin.install "${a}" => "bottle"`), a);
  }
  assert.ok(!rb.includes("bottle-linux-arm64"), "the unbuilt asset is not in the formula");
  assert.match(rb, /^class Bottle < Formula$/m);
  assert.match(rb, /^ {2}version "9\.9\.9"$/m);
  assert.match(rb, /^ {2}desc "[^"]+"$/m);
  assert.match(rb, /^ {2}homepage "https:\/\/example\.test"$/m);
  assert.match(rb, /^ {2}test do\n {4}system "#\{bin\}\/bottle", "version"\n {2}end$/m);

  const sums = await Deno.readTextFile(join(dist.path, "SHA256SUMS"));
  assert.equal(
    sums,
    built.sort().map((a) => `${sha256(FAKE[a]!)}  ${a}\n`).join(""),
  );
  const sha256sum = await findProgram("sha256sum");
  if (sha256sum) {
    const r = await run([sha256sum, "-c", "SHA256SUMS"], { cwd: dist.path });
    assert.equal(r.stdout.trim().split("\n").length, built.length);
  }
  assert.equal((await Deno.stat(join(dist.path, "install.sh"))).mode! & 0o777, 0o755);
});

Deno.test({
  name: `release: bottle.rb parses with \`ruby -c\`${
    RUBY ? "" : " (skipped: ruby is not installed here)"
  }`,
  ignore: !RUBY,
  fn: async () => {
    await using dist = await tempDir();
    await fakeDist(dist.path, ALL_ASSETS);
    const r = await run([RUBY!, "-c", join(dist.path, "bottle.rb")]);
    assert.match(r.stdout, /Syntax OK/);
  },
});

Deno.test("release: the formula escapes Ruby string syntax and refuses assets it cannot place", () => {
  const sha = "a".repeat(64);
  const rb = formulaText([{ name: "bottle-linux-x64", sha256: sha }], '1.0"#{x}', "https://h/x/");
  assert.match(rb, /^ {2}version "1\.0\\"\\#\{x\}"$/m);
  assert.match(rb, /url "https:\/\/h\/x\/bottle-linux-x64"/);
  assert.throws(() => formulaText([], "1", BASE), /at least one asset/);
  assert.throws(
    () => formulaText([{ name: "bottle-windows-x64", sha256: sha }], "1", BASE),
    /Unknown asset "bottle-windows-x64"/,
  );
  assert.throws(() => sha256sumsText([{ name: "bottle-linux-x64", sha256: "nope" }]), /SHA-256/);
});

Deno.test("release: the GitHub releases URL comes from --owner and the version; --base-url and BOTTLE_RELEASE_BASE_URL override it", () => {
  assert.equal(
    parseReleaseArgs([], {}).baseUrl,
    `https://github.com/bottle-dev/bottle/releases/download/v${VERSION}`,
  );
  assert.equal(
    parseReleaseArgs(["--owner", "acme"], {}).baseUrl,
    `https://github.com/acme/bottle/releases/download/v${VERSION}`,
  );
  assert.equal(
    parseReleaseArgs([], { BOTTLE_RELEASE_BASE_URL: "https://e.test/r/" }).baseUrl,
    "https://e.test/r",
  );
  assert.equal(
    parseReleaseArgs(["--base-url", "https://f.test/r"], { BOTTLE_RELEASE_BASE_URL: "https://e" })
      .baseUrl,
    "https://f.test/r",
  );
  assert.throws(() => parseReleaseArgs(["--target", "riscv"], {}), /Unknown target "riscv"/);
  assert.throws(() => parseReleaseArgs(["--base-url"], {}), /--base-url needs a value/);
  assert.throws(() => parseReleaseArgs(["--bogus"], {}), /Unknown argument "--bogus"/);
});

Deno.test("compile: binaryPlatform reads ELF and Mach-O headers, so a wrong-platform binary is caught", () => {
  const elf = (machine: number) => {
    const b = new Uint8Array(64);
    b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1]);
    new DataView(b.buffer).setUint16(18, machine, true);
    return b;
  };
  const macho = (cpu: number) => {
    const b = new Uint8Array(64);
    const v = new DataView(b.buffer);
    v.setUint32(0, 0xfeedfacf, true);
    v.setUint32(4, cpu, true);
    return b;
  };
  assert.equal(binaryPlatform(elf(0x3e)), "linux-x64");
  assert.equal(binaryPlatform(elf(0xb7)), "linux-arm64");
  assert.equal(binaryPlatform(macho(0x01000007)), "macos-x64");
  assert.equal(binaryPlatform(macho(0x0100000c)), "macos-arm64");
  assert.equal(binaryPlatform(elf(0x28)), undefined);
  assert.equal(binaryPlatform(new TextEncoder().encode("#!/bin/sh\n")), undefined);
  assert.equal(binaryPlatform(new Uint8Array(0)), undefined);
});

// ---------------------------------------------------------------------------
// install.sh against a local release server

interface InstallRun {
  /** uname -s and uname -m the script sees. */
  os: string;
  arch: string;
  args?: string[];
  env?: Record<string, string>;
  /** PATH after the uname shim (default: this process's PATH). */
  path?: string;
}

/** A temp world for install.sh: a uname shim, HOME, TMPDIR, and the script itself. */
async function installWorld(script = installScriptText()) {
  const dir = await tempDir("bottle-install-test-");
  const shim = join(dir.path, "shim");
  const home = join(dir.path, "home");
  const tmp = join(dir.path, "tmp");
  for (const d of [shim, home, tmp]) await Deno.mkdir(d);
  await Deno.writeTextFile(
    join(shim, "uname"),
    '#!/bin/sh\ncase "$1" in\n  -s) echo "$FAKE_UNAME_S" ;;\n  -m) echo "$FAKE_UNAME_M" ;;\n  *) exit 1 ;;\nesac\n',
    { mode: 0o755 },
  );
  const installSh = join(dir.path, "install.sh");
  await Deno.writeTextFile(installSh, script);
  return {
    root: dir.path,
    home,
    tmp,
    shim,
    async install(o: InstallRun): Promise<RunResult> {
      return await run([SH, installSh, ...(o.args ?? [])], {
        check: false,
        clearEnv: true,
        env: {
          PATH: `${shim}${delimiter}${o.path ?? Deno.env.get("PATH") ?? ""}`,
          HOME: home,
          TMPDIR: tmp,
          FAKE_UNAME_S: o.os,
          FAKE_UNAME_M: o.arch,
          ...o.env,
        },
        timeoutMs: 20_000,
      });
    },
    [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose](),
  };
}

/** Serves `files` ("/prefix/name" -> bytes) on 127.0.0.1. */
function serveFiles(files: Map<string, Uint8Array>) {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => {
      const body = files.get(new URL(req.url).pathname);
      return body ? new Response(body.slice()) : new Response("not found\n", { status: 404 });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** /ok: a good release of all four; /badsum: SHA256SUMS lies about linux-x64; /badasset: its bytes changed. */
function releaseFiles(): Map<string, Uint8Array> {
  const enc = new TextEncoder();
  const assets = ALL_ASSETS.map((name) => ({ name, sha256: sha256(FAKE[name]!) }));
  const sums = sha256sumsText(assets);
  const files = new Map<string, Uint8Array>();
  for (const prefix of ["ok", "badsum", "badasset"]) {
    for (const a of ALL_ASSETS) files.set(`/${prefix}/${a}`, FAKE[a]!);
    files.set(`/${prefix}/SHA256SUMS`, enc.encode(sums));
  }
  files.set(
    "/badsum/SHA256SUMS",
    enc.encode(sums.replace(sha256(FAKE["bottle-linux-x64"]!), sha256("something else"))),
  );
  files.set("/badasset/bottle-linux-x64", enc.encode("#!/bin/sh\necho tampered\n"));
  return files;
}

Deno.test("install.sh: picks the asset for uname -s/-m, verifies it and installs it into --prefix", async () => {
  await using server = serveFiles(releaseFiles());
  await using w = await installWorld();
  const cases: [string, string, string][] = [
    ["Linux", "x86_64", "bottle-linux-x64"],
    ["Linux", "amd64", "bottle-linux-x64"],
    ["Linux", "aarch64", "bottle-linux-arm64"],
    ["Darwin", "arm64", "bottle-macos-arm64"],
    ["Darwin", "x86_64", "bottle-macos-x64"],
  ];
  for (const [os, arch, asset] of cases) {
    const prefix = join(w.root, `prefix-${os}-${arch}`);
    const r = await w.install({
      os,
      arch,
      args: ["--base-url", `${server.url}/ok`, "--prefix", prefix],
    });
    assert.equal(r.code, 0, `${os}/${arch}: ${r.stderr}`);
    const installed = join(prefix, "bin", "bottle");
    assert.deepEqual(await Deno.readFile(installed), FAKE[asset], `${os}/${arch} got ${asset}`);
    assert.equal((await Deno.stat(installed)).mode! & 0o777, 0o755);
    assert.deepEqual(
      [...Deno.readDirSync(join(prefix, "bin"))].map((e) => e.name),
      ["bottle"],
      "no partial files left",
    );
    assert.match(r.stdout, new RegExp(`installed .*/bin/bottle \\(${asset},`));
    // Not on PATH: it says how to add it.
    assert.match(r.stdout, /is not on your PATH/);
    assert.ok(r.stdout.includes(`export PATH="${await Deno.realPath(join(prefix, "bin"))}:$PATH"`));
  }
  assert.deepEqual([...Deno.readDirSync(w.tmp)], [], "its temp dir is removed");
});

Deno.test("install.sh: BOTTLE_BASE_URL and ~/.local/bin by default; no PATH advice when the dir is on PATH", async () => {
  await using server = serveFiles(releaseFiles());
  await using w = await installWorld();
  const bin = join(w.home, ".local", "bin");
  const r = await w.install({
    os: "Linux",
    arch: "x86_64",
    env: { BOTTLE_BASE_URL: `${server.url}/ok/` },
    path: `${bin}${delimiter}${Deno.env.get("PATH")}`,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await Deno.readFile(join(bin, "bottle")), FAKE["bottle-linux-x64"]);
  assert.doesNotMatch(r.stdout, /not on your PATH/);
});

Deno.test("install.sh: a checksum mismatch (tampered SHA256SUMS or asset) is refused and installs nothing", async () => {
  await using server = serveFiles(releaseFiles());
  await using w = await installWorld();
  for (const which of ["badsum", "badasset"]) {
    const prefix = join(w.root, `prefix-${which}`);
    const r = await w.install({
      os: "Linux",
      arch: "x86_64",
      args: ["--base-url", `${server.url}/${which}`, "--prefix", prefix],
    });
    assert.notEqual(r.code, 0, which);
    assert.match(r.stderr, /checksum mismatch for bottle-linux-x64/, which);
    assert.match(r.stderr, /nothing was installed/);
    assert.ok(!(await exists(prefix)), `${which}: nothing is created under the prefix`);
    assert.ok(!(await exists(join(w.home, ".local"))), which);
  }
  assert.deepEqual([...Deno.readDirSync(w.tmp)], [], "its temp dir is removed");
});

Deno.test("install.sh: an unknown CPU or OS, an asset the release lacks, or no base URL is refused clearly", async () => {
  const files = releaseFiles();
  const partialSums = sha256sumsText([{
    name: "bottle-linux-x64",
    sha256: sha256(FAKE["bottle-linux-x64"]!),
  }]);
  files.set("/partial/SHA256SUMS", new TextEncoder().encode(partialSums));
  await using server = serveFiles(files);
  await using w = await installWorld();
  const prefix = join(w.root, "prefix");
  const base = ["--prefix", prefix, "--base-url"];

  let r = await w.install({ os: "Linux", arch: "riscv64", args: [...base, `${server.url}/ok`] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unsupported CPU architecture "riscv64"/);

  r = await w.install({ os: "FreeBSD", arch: "x86_64", args: [...base, `${server.url}/ok`] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unsupported operating system "FreeBSD"/);

  r = await w.install({ os: "Darwin", arch: "arm64", args: [...base, `${server.url}/partial`] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /this release has no build for macos-arm64/);

  r = await w.install({ os: "Linux", arch: "x86_64", args: ["--prefix", prefix] });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /set BOTTLE_BASE_URL or pass --base-url/);

  r = await w.install({ os: "Linux", arch: "x86_64", args: ["--frobnicate"] });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown argument "--frobnicate"/);

  assert.ok(!(await exists(prefix)), "nothing is installed");
});

const SHASUM_TOOLS = [
  "curl",
  "awk",
  "mktemp",
  "rm",
  "mkdir",
  "cp",
  "chmod",
  "mv",
  "shasum",
  "perl",
];
const SHASUM_FOUND = await Promise.all(SHASUM_TOOLS.map((n) => findProgram(n)));
const SHASUM_MISSING = SHASUM_TOOLS.filter((_, i) => !SHASUM_FOUND[i]);

Deno.test({
  name: `install.sh: verifies with \`shasum -a 256\` where sha256sum is missing${
    SHASUM_MISSING.length ? ` (skipped: ${SHASUM_MISSING.join(", ")} not installed here)` : ""
  }`,
  ignore: SHASUM_MISSING.length > 0,
  fn: async () => {
    const needed = SHASUM_TOOLS;
    const found = SHASUM_FOUND;
    await using server = serveFiles(releaseFiles());
    await using w = await installWorld();
    // A PATH with just these tools, shasum wrapped to show it was used.
    const tools = join(w.root, "tools");
    await Deno.mkdir(tools);
    for (const [i, n] of needed.entries()) {
      if (n !== "shasum") await Deno.symlink(found[i]!, join(tools, n));
    }
    const used = join(w.root, "shasum-used");
    await Deno.writeTextFile(
      join(tools, "shasum"),
      `#!/bin/sh\necho "$@" >> '${used}'\nexec '${found[needed.indexOf("shasum")]}' "$@"\n`,
      { mode: 0o755 },
    );
    const prefix = join(w.root, "prefix");
    let r = await w.install({
      os: "Darwin",
      arch: "arm64",
      args: ["--base-url", `${server.url}/ok`, "--prefix", prefix],
      path: tools,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      await Deno.readFile(join(prefix, "bin", "bottle")),
      FAKE["bottle-macos-arm64"],
    );
    assert.match(await Deno.readTextFile(used), /^-a 256 /);

    r = await w.install({
      os: "Linux",
      arch: "x86_64",
      args: ["--base-url", `${server.url}/badasset`, "--prefix", join(w.root, "p2")],
      path: tools,
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /checksum mismatch/);

    await Deno.remove(join(tools, "shasum"));
    r = await w.install({
      os: "Linux",
      arch: "x86_64",
      args: ["--base-url", `${server.url}/ok`, "--prefix", join(w.root, "p3")],
      path: tools,
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cannot verify the checksum .*neither sha256sum nor shasum/);
    assert.ok(!(await exists(join(w.root, "p3"))));
  },
});

// ---------------------------------------------------------------------------
// scripts/release.ts itself

/** Runs release.ts into `outDir` with `env` replacing these variables (undefined: removed). */
async function release(
  outDir: string,
  env: Record<string, string | undefined>,
  args: string[] = [],
): Promise<RunResult> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...Deno.env.toObject(), NO_COLOR: "1", ...env })) {
    if (v !== undefined) base[k] = v;
  }
  return await run(
    [Deno.execPath(), "run", "-A", RELEASE_TS, "--out-dir", outDir, "--base-url", BASE, ...args],
    { check: false, clearEnv: true, env: base, timeoutMs: 60_000 },
  );
}

Deno.test("release.ts: with no denort to be had, it names every target not built and why, and writes no formula or sums", async () => {
  // No DENORT_BIN, and downloads go to a proxy that hangs up: no denort
  // can be fetched (one already in deno's cache would still be used).
  using proxy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of proxy) conn.close();
  })().catch(() => {});
  const proxyUrl = `http://127.0.0.1:${proxy.addr.port}`;
  await using out = await tempDir();
  // What an older release left: none of it may survive into this one.
  await fakeDist(out.path, ALL_ASSETS);

  const r = await release(out.path, {
    DENORT_BIN: undefined,
    HTTPS_PROXY: proxyUrl,
    https_proxy: proxyUrl,
    HTTP_PROXY: proxyUrl,
    http_proxy: proxyUrl,
    NO_PROXY: undefined,
    no_proxy: undefined,
  });
  const notBuilt = Object.entries(TARGETS).filter(([t, a]) =>
    r.stderr.includes(`release: not built: ${t} (${a}): `)
  );
  const built = Object.values(TARGETS).filter((a) =>
    r.stdout.includes(`compiled ${join(out.path, a)}`)
  );
  assert.equal(notBuilt.length + built.length, 4, `every target is accounted for:\n${r.stderr}`);
  assert.equal(r.code, notBuilt.length ? 1 : 0, r.stderr);

  if (!built.length) {
    assert.match(r.stderr, /no target was built: wrote no SHA256SUMS, formula or install\.sh/);
    assert.match(r.stderr, /denort.*set DENORT_BIN to a local denort/);
    assert.deepEqual([...Deno.readDirSync(out.path)], [], "nothing is left in the release dir");
  } else {
    // A denort was in deno's cache: whatever was built is exactly what is listed.
    const rb = await Deno.readTextFile(join(out.path, "bottle.rb"));
    for (const [, a] of notBuilt) assert.ok(!rb.includes(a), `${a} is not in the formula`);
    for (const a of built) assert.ok(rb.includes(`${BASE}/${a}`));
  }
});

Deno.test({
  name:
    `release.ts: with DENORT_BIN for one platform, only that target is built, and the release covers only it${
      FAKE_DENORT ? "" : ` (skipped: no small ${HOST_PLATFORM} executable to stand in for denort)`
    }`,
  ignore: !FAKE_DENORT,
  fn: async () => {
    await using out = await tempDir();
    // `true` is no denort: the binary made from it does not run bottle; this
    // checks the release around it (and that no other target is faked from it).
    const r = await release(out.path, { DENORT_BIN: FAKE_DENORT! });
    const asset = `bottle-${HOST_PLATFORM}`;
    assert.equal(r.code, 1, r.stderr);
    for (const [t, a] of Object.entries(TARGETS)) {
      if (a === asset) continue;
      assert.ok(
        r.stderr.includes(
          `release: not built: ${t} (${a}): DENORT_BIN "${FAKE_DENORT}" is a ${HOST_PLATFORM} runtime: it cannot build ${
            a.replace("bottle-", "")
          }`,
        ),
        r.stderr,
      );
    }
    assert.match(
      r.stderr,
      new RegExp(`partial release: SHA256SUMS and bottle\\.rb cover only ${asset}`),
    );
    assert.deepEqual(
      [...Deno.readDirSync(out.path)].map((e) => e.name).sort(),
      ["SHA256SUMS", asset, "bottle.rb", "install.sh"].sort(),
    );
    const bytes = await Deno.readFile(join(out.path, asset));
    assert.equal(
      await Deno.readTextFile(join(out.path, "SHA256SUMS")),
      `${sha256(bytes)}  ${asset}\n`,
    );
    const blocks = formulaBlocks(await Deno.readTextFile(join(out.path, "bottle.rb")));
    assert.deepEqual([...blocks.entries()], [[BLOCK_OF[asset]!, {
      url: `${BASE}/${asset}`,
      sha256: sha256(bytes),
    }]]);

    // The release's own install.sh installs it from a server holding the release.
    const files = new Map<string, Uint8Array>();
    for (const f of [asset, "SHA256SUMS"]) {
      files.set(`/rel/${f}`, await Deno.readFile(join(out.path, f)));
    }
    await using server = serveFiles(files);
    await using w = await installWorld(await Deno.readTextFile(join(out.path, "install.sh")));
    const [os, arch] = HOST_PLATFORM === "linux-x64" ? ["Linux", "x86_64"] : ["Linux", "aarch64"];
    const prefix = join(w.root, "prefix");
    let ir = await w.install({
      os,
      arch,
      args: ["--base-url", `${server.url}/rel`, "--prefix", prefix],
    });
    assert.equal(ir.code, 0, ir.stderr);
    assert.deepEqual(await Deno.readFile(join(prefix, "bin", "bottle")), bytes);
    ir = await w.install({
      os: "Darwin",
      arch: "arm64",
      args: ["--base-url", `${server.url}/rel`],
    });
    assert.equal(ir.code, 1);
    assert.match(ir.stderr, /this release has no build for macos-arm64/);
  },
});

Deno.test({
  name: `release.ts: the compiled binary runs \`bottle version\`, \`plan\` and \`build\`${
    COMPILE_PROBLEM ? ` (skipped: no denort for the host: ${COMPILE_PROBLEM})` : ""
  }`,
  ignore: COMPILE_PROBLEM !== undefined,
  fn: async () => {
    await using out = await tempDir();
    const r = await release(out.path, {}, ["--target", HOST_TARGET!]);
    assert.equal(r.code, 0, r.stderr);
    const bin = join(out.path, `bottle-${HOST_PLATFORM}`);
    const v = await run([bin, "version"]);
    assert.match(v.stdout, new RegExp(`^bottle ${VERSION.replaceAll(".", "\\.")} \\(deno `));
    // Everything it needs at run time is in it: the plan, and the builds from its embedded contexts.
    const home = await Deno.makeTempDir({ prefix: "bottle-bin-home-" });
    try {
      const env = { HOME: home, NO_COLOR: "1" };
      const plan = await run([bin, "plan", "claude", "--json"], { env, cwd: home });
      assert.equal(JSON.parse(plan.stdout).schema, "bottle.plan/v3");
      const build = await run([bin, "build", "claude"], {
        env: {
          ...env,
          BOTTLE_PIPELOCK_IMAGE: await pipelockStandin(),
          ...(Deno.env.get("BOTTLE_BUILD_CA_CERTS")
            ? { BOTTLE_BUILD_CA_CERTS: Deno.env.get("BOTTLE_BUILD_CA_CERTS")! }
            : {}),
        },
        cwd: home,
        check: false,
        timeoutMs: 900_000,
      });
      assert.equal(build.code, 0, build.stderr);
      assert.equal(build.stdout.trim().split("\n").length, 3, build.stdout);
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
});
