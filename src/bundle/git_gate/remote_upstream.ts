/**
 * The gate's side of a declared upstream: git talks to the real server from
 * the bundle with the upstream's identity, which lives only here. Over ssh:
 * the private key in a file only the bundle user can read, the server's key
 * checked against the user's known_hosts (never accepted on first sight), no
 * agent, no config files. Over https: the token handed to git by an inline
 * credential helper from the environment of that one git process (never in
 * a URL, a config file or argv). The mirror is a bare clone, refreshed from
 * the upstream before the agent fetches or pushes, and an accepted push is
 * pushed on before the agent's push returns, so the agent hears the
 * upstream's verdict.
 */
import type { RemoteUpstream } from "./gate_config.ts";
import { git } from "./gate_git.ts";
import { configureMirror, mirrorPath } from "./mirror.ts";

export interface RemoteAccess {
  /** Extra `-c` options for every git that talks to the upstream. */
  config: string[];
  env: Record<string, string>;
}

/** Files (key, known hosts, CA bundle) go in a fresh dir only the bundle user can read. */
export async function remoteAccess(
  u: RemoteUpstream,
  secret: string | undefined,
  opts: { extraCaPems: string[]; systemCaFile: string },
): Promise<RemoteAccess> {
  const dir = await Deno.makeTempDir({ prefix: `bottle-gate-${u.name}-` });
  await Deno.chmod(dir, 0o700);
  const env: Record<string, string> = {};
  const config: string[] = [];
  if (u.identity?.kind === "token" && !secret) {
    throw new Error(`upstream ${u.name}: its token is missing from the bundle's secrets`);
  }
  if (/^https?:\/\//.test(u.url)) {
    if (opts.extraCaPems.length > 0) {
      const system = await Deno.readTextFile(opts.systemCaFile).catch(() => "");
      const bundle = `${dir}/ca.pem`;
      await Deno.writeTextFile(bundle, [system, ...opts.extraCaPems].join("\n"), { mode: 0o600 });
      config.push("-c", `http.sslCAInfo=${bundle}`);
    }
    // A redirect must not take the token (or the agent's pushes) elsewhere.
    config.push("-c", "http.followRedirects=false");
    if (secret) {
      const url = new URL(u.url);
      if (url.protocol !== "https:") {
        throw new Error(`upstream ${u.name}: a token is sent over https only, not ${url.protocol}`);
      }
      env.BOTTLE_GATE_USERNAME = decodeURIComponent(url.username) || "x-access-token";
      env.BOTTLE_GATE_TOKEN = secret;
      config.push(
        // The empty value drops any helper configured before this one; the
        // gate's answers for the upstream's own origin only.
        "-c",
        "credential.helper=",
        "-c",
        `credential.${url.origin}.helper=!f() { test "$1" = get && printf 'username=%s\\npassword=%s\\n' "$BOTTLE_GATE_USERNAME" "$BOTTLE_GATE_TOKEN"; }; f`,
      );
    }
    return { config, env };
  }
  // ssh. The bundle's uid may have no passwd entry (it runs as the host
  // user when it lands pushes), and ssh refuses to run without one:
  // nss_wrapper gives it one, for ssh only.
  const known = `${dir}/known_hosts`;
  await Deno.writeTextFile(known, u.knownHosts ?? "", { mode: 0o600 });
  const uid = Deno.uid() ?? 65532;
  const gid = Deno.gid() ?? 65532;
  await Deno.writeTextFile(`${dir}/passwd`, `bottle:x:${uid}:${gid}:bottle:${dir}:/bin/sh\n`);
  await Deno.writeTextFile(`${dir}/group`, `bottle:x:${gid}:\n`);
  env.LD_PRELOAD = "libnss_wrapper.so";
  env.NSS_WRAPPER_PASSWD = `${dir}/passwd`;
  env.NSS_WRAPPER_GROUP = `${dir}/group`;
  const ssh = [
    "ssh",
    "-F",
    "/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${known}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "IdentityAgent=none",
    "-o",
    "ConnectTimeout=20",
  ];
  if (secret) {
    const key = `${dir}/key`;
    await Deno.writeTextFile(key, secret.endsWith("\n") ? secret : `${secret}\n`, { mode: 0o600 });
    ssh.push("-o", "IdentitiesOnly=yes", "-i", key);
  }
  env.GIT_SSH_COMMAND = ssh.join(" ");
  env.GIT_SSH_VARIANT = "ssh";
  return { config, env };
}

/** A bare clone of the upstream, with the gate's hooks and rules. */
export async function makeRemoteMirror(
  mirrorsDir: string,
  hooksDir: string,
  u: RemoteUpstream,
  access: RemoteAccess,
): Promise<string> {
  const dir = mirrorPath(mirrorsDir, u);
  const r = await git(dir, [...access.config, "clone", "--bare", "--quiet", "--", u.url, dir], {
    env: access.env,
    check: false,
    noGitDir: true,
  });
  if (r.code !== 0) {
    // What git and ssh said, then the one line that names the upstream: the
    // launch's error shows the end of the bundle's output.
    const said = r.stderr.replaceAll("\r", "").trim();
    throw new Error(
      `${said ? `${said}\n` : ""}could not clone ${u.url} (git exited with ${r.code})`,
    );
  }
  await configureMirror(dir, hooksDir);
  return dir;
}

/**
 * The mirror's branches and tags set to the upstream's. Requests that come
 * while a refresh runs share it (one more is queued behind it for those
 * that came after it started), so the agent cannot make the gate hammer
 * the upstream with the user's identity faster than one fetch at a time.
 */
export class MirrorRefresher {
  #running = new Map<string, Promise<void>>();
  #queued = new Map<string, Promise<void>>();

  constructor(
    private readonly mirrorsDir: string,
    private readonly access: Map<string, RemoteAccess>,
  ) {}

  refresh(u: RemoteUpstream): Promise<void> {
    const queued = this.#queued.get(u.name);
    if (queued) return queued;
    const running = this.#running.get(u.name);
    const start = () => {
      this.#queued.delete(u.name);
      const p = this.#fetch(u).finally(() => {
        if (this.#running.get(u.name) === p) this.#running.delete(u.name);
      });
      this.#running.set(u.name, p);
      return p;
    };
    if (!running) return start();
    const next = running.catch(() => {}).then(start);
    this.#queued.set(u.name, next);
    return next;
  }

  async #fetch(u: RemoteUpstream): Promise<void> {
    const a = this.access.get(u.name)!;
    const r = await git(mirrorPath(this.mirrorsDir, u), [
      ...a.config,
      "fetch",
      "--quiet",
      "--prune",
      "--no-write-fetch-head",
      "origin",
      "+refs/heads/*:refs/heads/*",
      "+refs/tags/*:refs/tags/*",
    ], { env: a.env, check: false });
    if (r.code !== 0) {
      throw new Error(`could not fetch from ${u.url}: ${r.stderr.trim() || `exit ${r.code}`}`);
    }
  }
}

/**
 * Pushes accepted updates on to the upstream from inside pre-receive (the
 * new objects are still in quarantine, which `env` names). Never forced:
 * the upstream's own rules have the last word. Its output is returned.
 */
export async function pushOn(
  gitDir: string,
  access: RemoteAccess,
  updates: { new: string; ref: string }[],
  env: Record<string, string>,
): Promise<{ ok: boolean; output: string }> {
  const r = await git(gitDir, [
    ...access.config,
    "push",
    "--porcelain",
    // All or nothing, as the agent's push is here: never half of it upstream
    // (one ref needs no --atomic, which a server without it would refuse).
    ...(updates.length > 1 ? ["--atomic"] : []),
    "--no-verify",
    "origin",
    ...updates.map((x) => `${x.new}:${x.ref}`),
  ], { env: { ...env, ...access.env }, check: false });
  return { ok: r.code === 0, output: `${r.stdout}${r.stderr}`.trim() };
}
