/**
 * A local HTTPS server standing in for the internet in egress tests: its own
 * test CA (minted with src/tls/ca.ts), bound to 127.0.0.1:0, answering for
 * made-up names (`api.test.local`) that the pipelock stand-in resolves to
 * 127.0.0.1 with `--resolve`. It records every request's headers and serves:
 *
 *   GET /headers        the request headers as JSON
 *   GET /sse?n=N        N server-sent events; after the first it waits for
 *                       `releaseSse()`, so a test can prove the first event
 *                       arrived while the stream was still open
 *   GET /bytes?n=N      N bytes of body (Content-Length)
 *   POST /echo          the request body back
 *   GET /ws             WebSocket echo
 *   GET /status/CODE    an empty response with that status
 */
import { serveTls } from "./tls_server.ts";

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
}

export interface TestUpstream extends AsyncDisposable {
  readonly port: number;
  /** The test CA's certificate (PEM) and a file holding it. */
  readonly caCertPem: string;
  readonly caFile: string;
  readonly requests: RecordedRequest[];
  /** Resolves once an SSE stream has sent its first event and is holding the rest. */
  sseStarted(): Promise<void>;
  /** Lets held SSE streams finish. */
  releaseSse(): void;
  /** True once an SSE stream sent its last event. */
  readonly sseFinished: boolean;
  close(): Promise<void>;
}

export async function startTestUpstream(
  hostnames: string[] = ["api.test.local", "open.test.local", "localhost", "127.0.0.1"],
  /** Where to listen: loopback unless a test needs a docker bridge (its gateway address). */
  opts: { hostname?: string } = {},
): Promise<TestUpstream> {
  const requests: RecordedRequest[] = [];
  const started = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  let sseFinished = false;
  let payload = new Uint8Array(0);
  const enc = new TextEncoder();

  const handler = (req: Request): Response | Promise<Response> => {
    const url = new URL(req.url);
    requests.push({
      method: req.method,
      path: url.pathname,
      headers: Object.fromEntries(req.headers),
    });
    if (url.pathname === "/headers") return Response.json(Object.fromEntries(req.headers));
    if (url.pathname === "/sse") {
      const n = Number(url.searchParams.get("n") ?? "3");
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(enc.encode(`data: event 1\n\n`));
          started.resolve();
          await release.promise;
          for (let i = 2; i <= n; i++) controller.enqueue(enc.encode(`data: event ${i}\n\n`));
          sseFinished = true;
          controller.close();
        },
      });
      return new Response(body, {
        headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
      });
    }
    if (url.pathname === "/bytes") {
      // One buffer, reused while the size stays the same: the upstream must
      // not be what limits a throughput measurement.
      const n = Number(url.searchParams.get("n") ?? "0");
      if (payload.length !== n) payload = new Uint8Array(n).fill(0x61);
      return new Response(payload, { headers: { "content-type": "application/octet-stream" } });
    }
    if (url.pathname === "/echo") {
      return req.arrayBuffer().then((b) => new Response(b));
    }
    if (url.pathname === "/ws") {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(e.data);
      return response;
    }
    const status = /^\/status\/(\d{3})$/.exec(url.pathname);
    if (status) return new Response(null, { status: Number(status[1]) });
    return new Response("not found\n", { status: 404 });
  };

  const server = await serveTls(
    {
      names: hostnames,
      caName: "bottle test upstream CA",
      ...opts.hostname ? { hostname: opts.hostname } : {},
    },
    handler,
  );
  const { port, caCertPem, caFile } = server;
  const close = async () => {
    release.resolve();
    await server.close();
  };
  return {
    port,
    caCertPem,
    caFile,
    requests,
    sseStarted: () => started.promise,
    releaseSse: () => release.resolve(),
    get sseFinished() {
      return sseFinished;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
