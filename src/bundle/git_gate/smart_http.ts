/**
 * git's smart HTTP protocol, served by git itself: each request runs
 * `git http-backend` (CGI) over the gate's mirrors. Only the three smart
 * endpoints are served, for upstreams the config names; the dumb protocol
 * (which would hand out any file under the mirror) is refused. The hooks
 * find their upstream and the bottle's secrets in the environment the
 * backend passes down to receive-pack.
 */
import { spawn } from "../../proc/runner.ts";
import { gitEnv } from "./gate_git.ts";

const ENDPOINT = /^\/([a-z0-9][a-z0-9-]*)\.git\/(info\/refs|git-upload-pack|git-receive-pack)$/;
const SERVICES = ["git-upload-pack", "git-receive-pack"];

export interface SmartHttpOptions {
  mirrorsDir: string;
  upstreams: ReadonlySet<string>;
  /** Env of every backend (and so of the hooks). */
  env: Record<string, string>;
  /** Run before each ref advertisement; a message fails the request with it (git's ERR line). */
  beforeRefs?: (upstream: string) => Promise<string | undefined>;
}

export async function serveSmartHttp(req: Request, opts: SmartHttpOptions): Promise<Response> {
  const url = new URL(req.url);
  const m = ENDPOINT.exec(url.pathname);
  if (!m || !opts.upstreams.has(m[1]!)) return text(404, "not found\n");
  const [, upstream, endpoint] = m;
  if (endpoint === "info/refs") {
    if (req.method !== "GET") return text(405, "method not allowed\n");
    const service = url.searchParams.get("service") ?? "";
    if (!SERVICES.includes(service)) {
      return text(403, "only git's smart HTTP protocol is served\n");
    }
    const failed = await opts.beforeRefs?.(upstream!);
    if (failed) return errAdvertisement(service, failed);
  } else if (req.method !== "POST") return text(405, "method not allowed\n");

  const env: Record<string, string> = {
    ...gitEnv(opts.env),
    GIT_PROJECT_ROOT: opts.mirrorsDir,
    GIT_HTTP_EXPORT_ALL: "1",
    PATH_INFO: url.pathname,
    QUERY_STRING: url.search.slice(1),
    REQUEST_METHOD: req.method,
    REMOTE_USER: "agent",
    REMOTE_ADDR: "127.0.0.1",
    BOTTLE_GATE_UPSTREAM: upstream!,
  };
  const copy: [string, string][] = [
    ["content-type", "CONTENT_TYPE"],
    ["content-length", "CONTENT_LENGTH"],
    ["content-encoding", "HTTP_CONTENT_ENCODING"],
    // Not Git-Protocol: protocol v2 serves any object asked for by its id,
    // and through the mirror's alternates that is every object of the host
    // repository (other bottles' branches, dropped stashes). v0 serves no
    // commit the ref advertisement does not reach (a tree or blob named by
    // its id it still serves: see the README).
  ];
  for (const [header, name] of copy) {
    const v = req.headers.get(header);
    if (v !== null) env[name] = v;
  }
  const child = spawn(["git", "http-backend"], {
    clearEnv: true,
    env,
    stdin: req.body ?? new Uint8Array(),
    stdout: "capture",
    stderr: "inherit",
  });
  return await cgiResponse(child.process.stdout);
}

/** A CGI program's output as a response: its header block, then the body streamed. */
async function cgiResponse(out: ReadableStream<Uint8Array>): Promise<Response> {
  const reader = out.getReader();
  let buf: Uint8Array = new Uint8Array(0);
  let end = -1;
  let sep = 0;
  while (end < 0) {
    const { value, done } = await reader.read();
    if (done) return text(502, "git http-backend ended without a response\n");
    buf = concat(buf, value);
    [end, sep] = headerEnd(buf);
    if (end < 0 && buf.length > 64 * 1024) return text(502, "git http-backend sent no header\n");
  }
  const head = new TextDecoder().decode(buf.subarray(0, end));
  const rest = buf.subarray(end + sep);
  const headers = new Headers();
  let status = 200;
  for (const line of head.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i < 0) continue;
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    if (name.toLowerCase() === "status") status = Number.parseInt(value, 10) || 500;
    else headers.append(name, value);
  }
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      if (rest.length > 0) c.enqueue(rest);
    },
    async pull(c) {
      const { value, done } = await reader.read();
      if (done) c.close();
      else c.enqueue(value);
    },
    cancel() {
      reader.cancel().catch(() => {});
    },
  });
  return new Response(status === 204 || status === 304 ? null : body, { status, headers });
}

function headerEnd(b: Uint8Array): [number, number] {
  for (let i = 0; i + 1 < b.length; i++) {
    if (b[i] === 10 && b[i + 1] === 10) return [i, 2];
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return [i, 4];
  }
  return [-1, 0];
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** A ref advertisement holding only `ERR <message>`: git prints "remote error: <message>". */
function errAdvertisement(service: string, message: string): Response {
  const line = `ERR ${message.replace(/[\r\n]+/g, " ").slice(0, 4000)}\n`;
  const len = new TextEncoder().encode(line).length + 4;
  return new Response(`${len.toString(16).padStart(4, "0")}${line}`, {
    status: 200,
    headers: {
      "content-type": `application/x-${service}-advertisement`,
      "cache-control": "no-cache",
    },
  });
}

function text(status: number, body: string): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain" } });
}
