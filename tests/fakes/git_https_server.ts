/**
 * TEST-ONLY: a private git host over HTTPS, as GitHub serves one to a token:
 * every request must carry Basic credentials `x-access-token:<token>` (git
 * sends them only after a 401 with a Basic challenge, as with a real host),
 * anything else is refused. Behind the check, real git: `git http-backend`
 * over bare repositories in a temp dir (through the gate's own smart HTTP
 * handler, which runs it as CGI). Its TLS certificate is from a test CA.
 */
import { serveTls } from "./tls_server.ts";
import { serveSmartHttp } from "../../src/bundle/git_gate/smart_http.ts";
import { run } from "../../src/proc/runner.ts";

export interface GitHttpsServer extends AsyncDisposable {
  readonly port: number;
  readonly caFile: string;
  /** Where its bare repositories are (`<name>.git`). */
  readonly root: string;
  /** How many requests came without valid credentials, and how many with. */
  readonly refused: number;
  readonly authorized: number;
  /** Authorization headers that were present but wrong. */
  readonly wrong: string[];
}

export async function startGitHttpsServer(opts: {
  names: string[];
  hostname: string;
  token: string;
  repos: string[];
}): Promise<GitHttpsServer> {
  const root = await Deno.makeTempDir({ prefix: "bottle-test-git-https-" });
  for (const r of opts.repos) {
    await run(["git", "init", "--quiet", "--bare", "--initial-branch=main", `${root}/${r}.git`]);
    await run(["git", "-C", `${root}/${r}.git`, "config", "http.receivepack", "true"]);
  }
  const expected = `Basic ${btoa(`x-access-token:${opts.token}`)}`;
  const state = { refused: 0, authorized: 0, wrong: [] as string[] };
  const server = await serveTls(
    { names: opts.names, caName: "bottle test git host CA", hostname: opts.hostname },
    (req) => {
      const auth = req.headers.get("authorization");
      if (auth !== expected) {
        state.refused++;
        if (auth !== null) state.wrong.push(auth);
        return new Response("credentials required\n", {
          status: 401,
          headers: { "www-authenticate": 'Basic realm="bottle test"' },
        });
      }
      state.authorized++;
      return serveSmartHttp(req, {
        mirrorsDir: root,
        upstreams: new Set(opts.repos),
        env: {},
      });
    },
  );
  return {
    port: server.port,
    caFile: server.caFile,
    root,
    get refused() {
      return state.refused;
    },
    get authorized() {
      return state.authorized;
    },
    get wrong() {
      return state.wrong;
    },
    async [Symbol.asyncDispose]() {
      await server.close();
      await Deno.remove(root, { recursive: true }).catch(() => {});
    },
  };
}
