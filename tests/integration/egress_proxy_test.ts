/**
 * The egress daemon as it runs in the bundle: real processes on loopback
 * (the pipelock stand-in, egress) in front of a local HTTPS test upstream,
 * driven by curl the way an agent's HTTPS_PROXY traffic would be.
 */
import assert from "node:assert/strict";
import { run, spawn } from "../../src/proc/runner.ts";
import {
  auditLines,
  curlArgs,
  PROXY_AUTH_LINE,
  PROXY_TOKEN,
  rawRouted,
  SECRET,
  type Stack,
  startStack,
  until,
  wsFrame,
} from "../helpers/egress_stack.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const PLACEHOLDER = "placeholder-key";

Deno.test("egress injects the route credential and drops the placeholder the agent sent", async () => {
  await using s = await startStack();
  const url = `https://api.test.local:${s.upstream.port}/headers`;
  const out = await run(
    curlArgs(s, url, ["-H", `x-api-key: ${PLACEHOLDER}`, "-H", "authorization: Bearer x"]),
  );
  const seen = JSON.parse(out.stdout);
  assert.equal(seen["x-api-key"], SECRET);
  assert.equal(seen["authorization"], undefined);
});

Deno.test("routed connections go to the routes' pipelock, every other to the one that scans all headers", async () => {
  await using s = await startStack();
  await run(curlArgs(s, `https://api.test.local:${s.upstream.port}/headers`));
  await run([
    "curl",
    "-sS",
    "--max-time",
    "20",
    "--proxy",
    s.proxyUrl,
    "--cacert",
    s.upstream.caFile,
    `https://open.test.local:${s.upstream.port}/headers`,
  ]);
  const routed = `CONNECT api.test.local:${s.upstream.port}`;
  const open = `CONNECT open.test.local:${s.upstream.port}`;
  assert.match(s.routesStandin.stderr(), new RegExp(`allow ${routed}`));
  assert.doesNotMatch(s.routesStandin.stderr(), new RegExp(open));
  assert.match(s.standin.stderr(), new RegExp(`allow ${open}`));
  assert.doesNotMatch(s.standin.stderr(), new RegExp(routed));
});

Deno.test("a non-routed allowlisted host is tunneled untouched with the upstream's own certificate", async () => {
  await using s = await startStack();
  const url = `https://open.test.local:${s.upstream.port}/headers`;
  // Trusting only the upstream's CA proves the certificate is not egress's.
  const out = await run([
    "curl",
    "-sS",
    "--max-time",
    "60",
    "--proxy",
    s.proxyUrl,
    "--cacert",
    s.upstream.caFile,
    "-H",
    `x-api-key: ${PLACEHOLDER}`,
    url,
  ]);
  assert.equal(JSON.parse(out.stdout)["x-api-key"], PLACEHOLDER);
  const rejected = await run(curlArgs(s, url), { check: false });
  assert.equal(rejected.code, 60, "egress's CA must not validate a tunneled host");
});

Deno.test("a host outside pipelock's allowlist is refused with 403", async () => {
  await using s = await startStack();
  const out = await run(
    curlArgs(s, `https://blocked.test.local:${s.upstream.port}/headers`, ["-w", "%{http_connect}"]),
    { check: false },
  );
  assert.equal(out.stdout.trim(), "403");
  assert.notEqual(out.code, 0);
  assert.equal(s.upstream.requests.length, 0);
});

Deno.test("an SSE stream through a routed host arrives event by event", async () => {
  await using s = await startStack();
  const curl = spawn(
    curlArgs(s, `https://api.test.local:${s.upstream.port}/sse?n=3`, ["-N"]),
    { stdout: "capture", stderr: "capture" },
  );
  const reader = curl.process.stdout.getReader();
  const dec = new TextDecoder();
  let text = "";
  try {
    while (!text.includes("data: event 1\n\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`curl ended early: ${text}`);
      text += dec.decode(value, { stream: true });
    }
    assert.equal(s.upstream.sseFinished, false, "first event must arrive while the stream is open");
    s.upstream.releaseSse();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
    }
    assert.equal(text, "data: event 1\n\ndata: event 2\n\ndata: event 3\n\n");
  } finally {
    reader.releaseLock();
    curl.kill();
    await curl.status;
    await curl.stderrText();
  }
});

for (
  const [name, host, caKey] of [
    ["routed", "api.test.local", "egress"],
    ["tunneled", "open.test.local", "upstream"],
  ] as const
) {
  Deno.test(`a 100 MB download through a ${name} host arrives complete`, async () => {
    await using s = await startStack();
    const size = 100 * 1024 * 1024;
    const ca = caKey === "egress" ? s.egressCaFile : s.upstream.caFile;
    const out = await run([
      "curl",
      "-sS",
      "--max-time",
      "120",
      "--proxy",
      s.proxyUrl,
      "--cacert",
      ca,
      "-o",
      "/dev/null",
      "-w",
      "%{size_download}",
      `https://${host}:${s.upstream.port}/bytes?n=${size}`,
    ]);
    assert.equal(Number(out.stdout), size);
  });
}

Deno.test("audit lines record each request and never contain the secret", async () => {
  await using s = await startStack();
  const port = s.upstream.port;
  await run(
    curlArgs(s, `https://api.test.local:${port}/headers?token=abc`, [
      "-H",
      `x-api-key: ${PLACEHOLDER}`,
    ]),
  );
  await run([
    "curl",
    "-sS",
    "--proxy",
    s.proxyUrl,
    "--cacert",
    s.upstream.caFile,
    `https://open.test.local:${port}/headers`,
  ]);
  await run(curlArgs(s, `https://blocked.test.local:${port}/`), { check: false });
  await until(async () => (await auditLines(s)).length >= 3, "three audit lines");
  const text = await Deno.readTextFile(s.auditFile);
  assert.ok(!text.includes(SECRET), "audit log must not contain the secret");
  const lines = await auditLines(s);
  const byDecision = Object.fromEntries(lines.map((l) => [l.decision, l]));
  assert.deepEqual(
    { ...byDecision.routed, time: undefined },
    {
      time: undefined,
      bottle: "it-bottle",
      method: "GET",
      host: `api.test.local:${port}`,
      path: "/headers",
      status: 200,
      bytes_up: byDecision.routed?.bytes_up,
      bytes_down: byDecision.routed?.bytes_down,
      decision: "routed",
      reason: `credential route "api.test.local:${port}"`,
    },
  );
  assert.ok(Number(byDecision.routed?.bytes_down) > 0);
  assert.equal(byDecision.tunneled?.path, undefined);
  assert.equal(byDecision.tunneled?.status, 200);
  assert.equal(byDecision.denied?.status, 403);
  assert.equal((await Deno.stat(s.auditFile)).mode! & 0o777, 0o600);
});

Deno.test("a WebSocket on a routed host is upgraded and echoes through egress", async () => {
  await using s = await startStack();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.egressPort });
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const authority = `api.test.local:${s.upstream.port}`;
  let tls: Deno.TlsConn | undefined;
  try {
    await conn.write(
      enc.encode(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${PROXY_AUTH_LINE}\r\n`),
    );
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    assert.match(dec.decode(buf.subarray(0, n ?? 0)), /^HTTP\/1\.1 200 /);
    tls = await Deno.startTls(conn, {
      hostname: "api.test.local",
      caCerts: [await Deno.readTextFile(s.egressCaFile)],
    });
    await tls.write(enc.encode(
      `GET /ws HTTP/1.1\r\nHost: ${authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n` +
        `x-api-key: ${PLACEHOLDER}\r\n\r\n`,
    ));
    let got = new Uint8Array(0);
    const readMore = async () => {
      const m = await tls!.read(buf);
      if (m === null) throw new Error("connection closed");
      got = new Uint8Array([...got, ...buf.subarray(0, m)]);
    };
    while (!dec.decode(got).includes("\r\n\r\n")) await readMore();
    const headEnd = dec.decode(got).indexOf("\r\n\r\n") + 4;
    assert.match(dec.decode(got.subarray(0, headEnd)), /^HTTP\/1\.1 101 /);
    got = got.subarray(headEnd);
    await tls.write(wsFrame("hello through egress"));
    while (got.length < 2 || got.length < 2 + (got[1]! & 0x7f)) await readMore();
    assert.equal(got[0], 0x81);
    assert.equal(dec.decode(got.subarray(2, 2 + (got[1]! & 0x7f))), "hello through egress");
    const wsReq = s.upstream.requests.find((r) => r.path === "/ws");
    assert.equal(wsReq?.headers["x-api-key"], SECRET);
  } finally {
    (tls ?? conn).close();
  }
});

Deno.test("GET /healthz on egress answers 200", async () => {
  await using s = await startStack();
  const out = await run([
    "curl",
    "-sS",
    "--noproxy",
    "*",
    "-w",
    "%{http_code}",
    `http://127.0.0.1:${s.egressPort}/healthz`,
  ]);
  assert.equal(out.stdout, "ok\n200");
});

Deno.test("a routed host that pipelock refuses gets pipelock's 403 on CONNECT", async () => {
  await using s = await startStack();
  const out = await run(
    curlArgs(s, `https://refused.test.local:${s.upstream.port}/headers`, ["-w", "%{http_connect}"]),
    { check: false },
  );
  assert.equal(out.stdout.trim(), "403");
  await until(async () => (await auditLines(s)).length >= 1, "the audit line");
  const [line] = await auditLines(s);
  assert.equal(line?.decision, "denied");
  assert.equal(line?.status, 403);
});

Deno.test("an absolute-form http request is forwarded through the upstream proxy", async () => {
  await using s = await startStack();
  const ac = new AbortController();
  const listening = Promise.withResolvers<number>();
  const plain = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      signal: ac.signal,
      onListen: (a) => listening.resolve(a.port),
    },
    (req) =>
      new Response(
        `plain ${new URL(req.url).pathname} ${req.headers.get("x-agent")} ${
          req.headers.get("host")
        }`,
      ),
  );
  try {
    const port = await listening.promise;
    const get = (...headers: string[]) =>
      run([
        "curl",
        "-sS",
        "--max-time",
        "30",
        "--proxy",
        s.proxyUrl,
        ...["x-agent: yes", ...headers].flatMap((h) => ["-H", h]),
        `http://plain.test.local:${port}/hello`,
      ]);
    const out = await get();
    assert.equal(out.stdout, `plain /hello yes plain.test.local:${port}`);
    // The URL names the server: a Host saying otherwise is replaced, not passed on.
    const lying = await get("Host: evil.test.local");
    assert.equal(lying.stdout, `plain /hello yes plain.test.local:${port}`);
    const logged = (await auditLines(s)).find((l) => l.method === "GET");
    assert.equal(logged?.decision, "forwarded");
  } finally {
    ac.abort();
    await plain.finished;
  }
});

Deno.test("egress exits 0 on SIGTERM", async () => {
  await using s = await startStack();
  s.egress.proc.kill("SIGTERM");
  const status = await s.egress.proc.status;
  assert.equal(status.code, 0);
});

Deno.test("several requests on one routed connection each get the credential", async () => {
  await using s = await startStack();
  const base = `https://api.test.local:${s.upstream.port}`;
  const out = await run(curlArgs(s, `${base}/headers`, [
    "-H",
    `x-api-key: ${PLACEHOLDER}`,
    `${base}/headers`,
    `${base}/headers`,
  ]));
  const bodies = out.stdout.split("}").filter((b) => b.trim()).map((b) => JSON.parse(b + "}"));
  assert.equal(bodies.length, 3);
  for (const b of bodies) assert.equal(b["x-api-key"], SECRET);
  await until(async () => (await auditLines(s)).length >= 3, "three audit lines");
  assert.equal(s.upstream.requests.length, 3);
  const tunnels = s.routesStandin.stderr().match(/allow CONNECT api\.test\.local/g) ?? [];
  assert.equal(tunnels.length, 1, "one upstream tunnel should carry all three requests");
});

Deno.test("request bodies reach a routed host intact, chunked or with a length", async () => {
  await using s = await startStack();
  const url = `https://api.test.local:${s.upstream.port}/echo`;
  const body = "x".repeat(200_000);
  const fixed = await run(curlArgs(s, url, ["--data-binary", "@-"]), { stdin: body });
  assert.equal(fixed.stdout, body);
  const chunked = await run(
    curlArgs(s, url, ["-H", "Transfer-Encoding: chunked", "--data-binary", "@-"]),
    { stdin: body },
  );
  assert.equal(chunked.stdout, body);
});

Deno.test("the pipelock stand-in's check rejects an unknown key like pipelock does", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const standin = `${ROOT}tests/fakes/pipelock_standin.ts`;
    await Deno.writeTextFile(
      `${dir}/ok.yaml`,
      "version: 1\nmode: strict\napi_allowlist: [a.example]\n",
    );
    await Deno.writeTextFile(`${dir}/bad.yaml`, "version: 1\nmode: strict\nbogus: true\n");
    const ok = await run([
      Deno.execPath(),
      "run",
      "-A",
      standin,
      "check",
      "--config",
      `${dir}/ok.yaml`,
    ]);
    assert.equal(ok.code, 0);
    const bad = await run(
      [Deno.execPath(), "run", "-A", standin, "check", "--config", `${dir}/bad.yaml`],
      { check: false },
    );
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /line 3: field bogus not found/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a routed host whose certificate egress does not trust gets 502, not the credential", async () => {
  await using s = await startStack({ trustUpstream: false });
  const out = await run(
    curlArgs(s, `https://api.test.local:${s.upstream.port}/headers`, ["-w", "%{http_connect}"]),
    { check: false },
  );
  assert.equal(out.stdout.trim(), "502");
  assert.equal(s.upstream.requests.length, 0);
  await until(async () => (await auditLines(s)).length >= 1, "the audit line");
  const [line] = await auditLines(s);
  assert.equal(line?.decision, "error");
  assert.match(String(line?.reason), /TLS to "api.test.local" failed/);
});

Deno.test("a routed request whose Host names another server is refused with 421", async () => {
  await using s = await startStack();
  const out = await run(
    curlArgs(s, `https://api.test.local:${s.upstream.port}/headers`, [
      "-H",
      "Host: evil.test.local",
      "-w",
      "%{http_code}",
      "-o",
      "/dev/null",
    ]),
    { check: false },
  );
  assert.equal(out.stdout.trim(), "421");
  assert.equal(s.upstream.requests.length, 0);
});

Deno.test("a response egress must close after still arrives whole", async () => {
  await using s = await startStack();
  const ac = new AbortController();
  const listening = Promise.withResolvers<number>();
  const size = 20 * 1024 * 1024;
  const plain = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      signal: ac.signal,
      onListen: (a) => listening.resolve(a.port),
    },
    () => new Response(new Uint8Array(size)),
  );
  try {
    const port = await listening.promise;
    // The stand-in answers absolute-form requests with Connection: close, so
    // egress closes the agent connection right after the last byte.
    const out = await run([
      "curl",
      "-sS",
      "--max-time",
      "60",
      "--proxy",
      s.proxyUrl,
      "-o",
      "/dev/null",
      "-w",
      "%{size_download}",
      `http://plain.test.local:${port}/big`,
    ]);
    assert.equal(Number(out.stdout), size);
  } finally {
    ac.abort();
    await plain.finished;
  }
});

Deno.test("an agent that does not trust the egress CA fails the handshake and egress keeps serving", async () => {
  await using s = await startStack();
  const url = `https://api.test.local:${s.upstream.port}/headers`;
  const untrusting = await run([
    "curl",
    "-sS",
    "--max-time",
    "30",
    "--proxy",
    s.proxyUrl,
    "--cacert",
    s.upstream.caFile,
    url,
  ], { check: false });
  assert.equal(untrusting.code, 60);
  await until(async () => (await auditLines(s)).length >= 1, "the audit line");
  assert.match(String((await auditLines(s))[0]?.reason), /Agent TLS handshake failed/);
  const out = await run(curlArgs(s, url));
  assert.equal(JSON.parse(out.stdout)["x-api-key"], SECRET);
});

Deno.test("egress with a missing route secret exits 2 naming the variable", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/egress.json`,
      JSON.stringify({
        bottle: "b",
        listen: { host: "127.0.0.1", port: 0 },
        upstreamProxy: "http://127.0.0.1:9",
        auditLog: `${dir}/audit.jsonl`,
        caCertFile: `${dir}/ca.pem`,
        caKeyFile: `${dir}/ca-key.pem`,
        upstreamCaFiles: [],
        routes: [{
          host: "api.test.local",
          header: "x-api-key",
          template: "{value}",
          valueEnv: "BOTTLE_ROUTE_UNSET",
        }],
      }),
    );
    const out = await run(
      [
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}src/bundle/egress/main.ts`,
        "--config",
        `${dir}/egress.json`,
      ],
      { check: false },
    );
    assert.equal(out.code, 2);
    assert.match(out.stderr, /environment variable "BOTTLE_ROUTE_UNSET" is not set/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const hostLine = (s: Stack) => `Host: api.test.local:${s.upstream.port}\r\n`;

Deno.test("routed hosts: TRACE and TRACK are refused, the credential never sent", async () => {
  await using s = await startStack();
  for (const method of ["TRACE", "TRACK"]) {
    const out = await rawRouted(s, `${method} /headers HTTP/1.1\r\n${hostLine(s)}\r\n`);
    assert.match(out, /^HTTP\/1\.1 405/, out);
  }
  assert.equal(s.upstream.requests.length, 0);
});

Deno.test("routed hosts: a second Host header is refused before any credential", async () => {
  await using s = await startStack();
  const out = await rawRouted(
    s,
    `GET /headers HTTP/1.1\r\n${hostLine(s)}Host: evil.test.local\r\n\r\n`,
  );
  assert.match(out, /^HTTP\/1\.1 400/, out);
  assert.equal(s.upstream.requests.length, 0);
});

Deno.test("routed hosts: a Host naming the tunnel's host on another port gets 421", async () => {
  await using s = await startStack();
  const wrongPort = s.upstream.port === 443 ? 8443 : 443;
  const out = await rawRouted(
    s,
    `GET /headers HTTP/1.1\r\nHost: api.test.local:${wrongPort}\r\n\r\n`,
  );
  assert.match(out, /^HTTP\/1\.1 421/, out);
  const abs = await rawRouted(
    s,
    `GET https://api.test.local:${wrongPort}/headers HTTP/1.1\r\n${hostLine(s)}\r\n`,
  );
  assert.match(abs, /^HTTP\/1\.1 400/, abs);
  assert.equal(s.upstream.requests.length, 0);
});

Deno.test("routed hosts: HTTP/1.0 with Transfer-Encoding is faulty framing: 400 and close", async () => {
  await using s = await startStack();
  const out = await rawRouted(
    s,
    `POST /echo HTTP/1.0\r\n${
      hostLine(s)
    }Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n`,
    "5\r\nhello\r\n0\r\n\r\nGET /headers HTTP/1.0\r\n\r\n",
  );
  assert.match(out, /^HTTP\/1\.1 400/, out);
  assert.match(out, /connection: close/i);
  assert.equal(s.upstream.requests.length, 0);
});

Deno.test("a request head over 64 KiB is refused with 431, however it arrives", async () => {
  await using s = await startStack();
  // Routed: through TLS, in records.
  const routed = await run(
    curlArgs(s, `https://api.test.local:${s.upstream.port}/headers`, [
      "-H",
      `X-Fill: ${"a".repeat(70 * 1024)}`,
      "-w",
      "%{http_code}",
      "-o",
      "/dev/null",
    ]),
    { check: false },
  );
  assert.equal(routed.stdout, "431");
  // Plain: one write of a 100 KiB head, which the socket hands over in big reads.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.egressPort });
  const head = `GET http://open.test.local:${s.upstream.port}/headers HTTP/1.1\r\n` +
    `Host: open.test.local:${s.upstream.port}\r\nX-Fill: ${"b".repeat(100 * 1024)}\r\n\r\n`;
  const reading = new Response(conn.readable).text();
  await conn.write(new TextEncoder().encode(head)).catch(() => {});
  const out = await reading.catch((e: Error) => `read failed: ${e.message}`);
  assert.match(out, /^HTTP\/1\.1 431/, out);
  assert.equal(s.upstream.requests.length, 0);
});

Deno.test("without the proxy credential egress answers 407: nothing dialled, no credential injected", async () => {
  await using s = await startStack();
  const bare = `http://127.0.0.1:${s.egressPort}`;
  const wrong = `http://bottle:not-the-token-0123456789abcdef@127.0.0.1:${s.egressPort}`;
  const routed = `https://api.test.local:${s.upstream.port}/headers`;
  // Positive control: the agent's own URL reaches the route, credential injected.
  const ok = await run(curlArgs(s, routed));
  assert.equal(JSON.parse(ok.stdout)["x-api-key"], SECRET);
  const before = {
    origin: s.upstream.requests.length,
    standin: s.standin.stderr() + s.routesStandin.stderr(),
  };
  for (const proxy of [bare, wrong]) {
    for (const url of [routed, `http://plain.test.local:${s.upstream.port}/headers`]) {
      const out = await run(
        [
          "curl",
          "-sS",
          "--max-time",
          "20",
          "--proxy",
          proxy,
          "--cacert",
          s.egressCaFile,
          "-o",
          "/dev/null",
          "-w",
          "%{http_connect} %{http_code}",
          url,
        ],
        { check: false },
      );
      const [connect, code] = out.stdout.trim().split(" ");
      assert.equal(
        url.startsWith("https:") ? connect : code,
        "407",
        `${proxy} ${url}: ${out.stdout}`,
      );
    }
  }
  // A credential sent some other way than Basic is no credential either.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.egressPort });
  const target = `api.test.local:${s.upstream.port}`;
  const reading = new Response(conn.readable).text();
  await conn.write(new TextEncoder().encode(
    `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: Bearer ${PROXY_TOKEN}\r\nConnection: close\r\n\r\n`,
  ));
  const raw = await reading;
  assert.match(raw, /^HTTP\/1\.1 407 /);
  assert.match(raw, /Proxy-Authenticate: Basic realm="bottle"/);
  assert.ok(!raw.includes(SECRET));
  // Nothing reached pipelock or the origin.
  assert.equal(s.upstream.requests.length, before.origin);
  assert.equal(
    s.standin.stderr() + s.routesStandin.stderr(),
    before.standin,
    "the stand-in saw a connection",
  );
  await until(
    async () => (await auditLines(s)).filter((l) => l.status === 407).length === 5,
    "five 407 audit lines",
  );
  const denied = (await auditLines(s)).filter((l) => l.status === 407);
  assert.ok(
    denied.every((l) => l.decision === "denied" && l.reason === "No valid proxy credential"),
  );
  // The bundle's own health probe needs none.
  const health = await run(["curl", "-sS", `http://127.0.0.1:${s.egressPort}/healthz`]);
  assert.equal(health.stdout, "ok\n");
});

Deno.test("a client that waits for the challenge (curl --proxy-anyauth) gets through on the same connection", async () => {
  await using s = await startStack();
  const out = await run(
    curlArgs(s, `https://api.test.local:${s.upstream.port}/headers`, ["--proxy-anyauth", "-v"]),
  );
  assert.equal(JSON.parse(out.stdout)["x-api-key"], SECRET);
  assert.match(out.stderr, /407/, "curl did not ask first");
  assert.equal((out.stderr.match(/Connected to 127\.0\.0\.1/g) ?? []).length, 1, out.stderr);
});

/** The agent's proxy variables, as a bottle sets them: the credential in the URL. */
function agentProxyEnv(s: Stack): Record<string, string> {
  return {
    HTTPS_PROXY: s.proxyUrl,
    HTTP_PROXY: s.proxyUrl,
    https_proxy: s.proxyUrl,
    http_proxy: s.proxyUrl,
    NO_PROXY: "localhost",
    no_proxy: "localhost",
  };
}

Deno.test("git takes the proxy credential from the agent's proxy URL", async () => {
  await using s = await startStack();
  const home = await Deno.makeTempDir({ prefix: "egress-git-" });
  try {
    // The test upstream is no git server: the request reaching it with the credential is the proof.
    const out = await run(
      ["git", "ls-remote", `https://api.test.local:${s.upstream.port}/team/tool.git`],
      {
        check: false,
        env: {
          ...agentProxyEnv(s),
          HOME: home,
          GIT_CONFIG_NOSYSTEM: "1",
          GIT_SSL_CAINFO: s.egressCaFile,
          GIT_TERMINAL_PROMPT: "0",
        },
      },
    );
    const seen = s.upstream.requests.filter((r) => r.path === "/team/tool.git/info/refs");
    assert.equal(seen.length, 1, `${out.stderr}`);
    assert.equal(seen[0]!.headers["x-api-key"], SECRET);
    assert.doesNotMatch(out.stderr, /407/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("npm takes the proxy credential from the agent's proxy URL", async () => {
  // npm is how CI installs Deno: it is there wherever these tests run.
  assert.equal((await run(["npm", "--version"], { check: false })).code, 0, "npm not found");
  await using s = await startStack();
  const home = await Deno.makeTempDir({ prefix: "egress-npm-" });
  try {
    const out = await run(
      [
        "npm",
        "view",
        "left-pad",
        "--registry",
        `https://api.test.local:${s.upstream.port}/`,
        "--fetch-retries",
        "0",
      ],
      {
        check: false,
        env: {
          ...agentProxyEnv(s),
          HOME: home,
          NODE_EXTRA_CA_CERTS: s.egressCaFile,
          npm_config_cafile: s.egressCaFile,
          npm_config_cache: `${home}/cache`,
          npm_config_update_notifier: "false",
        },
      },
    );
    const seen = s.upstream.requests.filter((r) => r.path === "/left-pad");
    assert.equal(seen.length, 1, `${out.stdout}\n${out.stderr}`);
    assert.equal(seen[0]!.headers["x-api-key"], SECRET);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("the log tells the bottle's policy from an upstream failing", async () => {
  await using s = await startStack({ allowlist: ["api.test.local", "*.test.local"] });
  const code = async (url: string) =>
    (await run(curlArgs(s, url, ["-o", "/dev/null", "-w", "%{http_connect}"]), { check: false }))
      .stdout;
  // Positive control: an allowlisted host is reached.
  assert.equal(await code(`https://api.test.local:${s.upstream.port}/headers`), "200");
  const before = s.standin.stderr() + s.routesStandin.stderr();
  // Not allowlisted: egress refuses it itself; neither pipelock hears of it.
  assert.equal(await code(`https://blocked.example:${s.upstream.port}/`), "403");
  const plain = await run(
    curlArgs(s, `http://plain.example:${s.upstream.port}/`, [
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
    ]),
    { check: false },
  );
  assert.equal(plain.stdout, "403");
  assert.equal(s.standin.stderr() + s.routesStandin.stderr(), before);
  // Allowlisted but nothing answers there: pipelock's 502, an upstream failure, not a denial.
  assert.equal(await code("https://open.test.local:9/"), "502");
  await until(async () => (await auditLines(s)).length >= 4, "four audit lines");
  const lines = await auditLines(s);
  const of = (host: string) => lines.find((l) => String(l.host).startsWith(host));
  assert.equal(of("blocked.example")?.decision, "denied");
  assert.equal(of("blocked.example")?.reason, "not in the allowlist");
  assert.equal(of("plain.example")?.decision, "denied");
  assert.equal(of("open.test.local:9")?.decision, "error");
  assert.equal(of("open.test.local:9")?.status, 502);
});

Deno.test("one proxy challenge per connection: a second request without the credential is closed on", async () => {
  await using s = await startStack();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.egressPort });
  const target = `api.test.local:${s.upstream.port}`;
  const ask = `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`;
  const reading = new Response(conn.readable).text();
  await conn.write(new TextEncoder().encode(ask + ask + ask));
  const raw = await reading; // ends: egress closed the connection
  const answers = raw.match(/^HTTP\/1\.1 407 /gm) ?? [];
  assert.equal(answers.length, 2, raw);
  assert.match(raw, /Connection: close/);
});
