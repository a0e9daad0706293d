import assert from "node:assert/strict";
import {
  BufferedWire,
  LimitExceededError,
  TruncatedError,
} from "../../src/bundle/egress/buffered.ts";
import {
  copyBody,
  HttpError,
  keepsAlive,
  parseRequestHead,
  parseResponseHead,
  requestFraming,
  responseFraming,
  serializeRequestHead,
} from "../../src/bundle/egress/http1.ts";
import type { Wire } from "../../src/bundle/egress/wire.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A wire that yields the given chunks, then end of stream, and records writes. */
class ScriptWire implements Wire {
  written: Uint8Array[] = [];
  constructor(private chunks: string[]) {}
  read() {
    const c = this.chunks.shift();
    return Promise.resolve(c === undefined ? null : enc.encode(c));
  }
  write(c: Uint8Array) {
    this.written.push(c.slice());
    return Promise.resolve();
  }
  closeWrite() {
    return Promise.resolve();
  }
  close() {}
  text() {
    return this.written.map((c) => dec.decode(c)).join("");
  }
}

Deno.test("a request head split across reads is parsed and the rest is kept", async () => {
  const w = new BufferedWire(new ScriptWire(["GET /a HT", "TP/1.1\r\nHost: x\r", "\n\r\nBODY"]));
  const head = await w.readHead(1024);
  const req = parseRequestHead(head!);
  assert.deepEqual(req, {
    method: "GET",
    target: "/a",
    version: "HTTP/1.1",
    headers: [["Host", "x"]],
  });
  assert.equal(dec.decode((await w.read())!), "BODY");
});

Deno.test("a head without its blank line before EOF is a truncation", async () => {
  const w = new BufferedWire(new ScriptWire(["GET / HTTP/1.1\r\nHost: x\r\n"]));
  await assert.rejects(() => w.readHead(1024), TruncatedError);
});

Deno.test("an oversized head is refused", async () => {
  const w = new BufferedWire(new ScriptWire(["GET / HTTP/1.1\r\n", "X: " + "a".repeat(2000)]));
  await assert.rejects(() => w.readHead(1024), LimitExceededError);
});

Deno.test("malformed request lines and header folding are rejected", () => {
  assert.throws(() => parseRequestHead(enc.encode("GET /\r\n\r\n")), HttpError);
  assert.throws(() => parseRequestHead(enc.encode("GET / HTTP/2\r\n\r\n")), HttpError);
  assert.throws(
    () => parseRequestHead(enc.encode("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n")),
    /folding/,
  );
  assert.throws(
    () => parseRequestHead(enc.encode("GET / HTTP/1.1\r\nBad Name: b\r\n\r\n")),
    HttpError,
  );
});

Deno.test("header bytes round-trip exactly, including non-ASCII", () => {
  const raw = new Uint8Array([
    ...enc.encode("GET / HTTP/1.1\r\nX: "),
    0xe9,
    0x80,
    ...enc.encode("\r\n\r\n"),
  ]);
  assert.deepEqual(serializeRequestHead(parseRequestHead(raw)), raw);
});

Deno.test("Transfer-Encoding with Content-Length is refused as smuggling", () => {
  const req = parseRequestHead(
    enc.encode("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
  );
  assert.throws(() => requestFraming(req), /Both Transfer-Encoding and Content-Length/);
});

Deno.test("conflicting Content-Length values are refused", () => {
  const req = parseRequestHead(
    enc.encode("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
  );
  assert.throws(() => requestFraming(req), /Invalid Content-Length/);
});

Deno.test("response framing follows the method and status", () => {
  const ok = parseResponseHead(enc.encode("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"));
  assert.deepEqual(responseFraming(ok, "GET"), { kind: "length", length: 5 });
  assert.deepEqual(responseFraming(ok, "HEAD"), { kind: "none" });
  const noLen = parseResponseHead(enc.encode("HTTP/1.1 200 OK\r\n\r\n"));
  assert.deepEqual(responseFraming(noLen, "GET"), { kind: "close" });
  const notModified = parseResponseHead(enc.encode("HTTP/1.1 304 Not Modified\r\n\r\n"));
  assert.deepEqual(responseFraming(notModified, "GET"), { kind: "none" });
});

Deno.test("keep-alive follows version and Connection", () => {
  assert.ok(keepsAlive("HTTP/1.1", []));
  assert.ok(!keepsAlive("HTTP/1.1", [["Connection", "close"]]));
  assert.ok(!keepsAlive("HTTP/1.0", []));
  assert.ok(keepsAlive("HTTP/1.0", [["Connection", "Keep-Alive"]]));
});

Deno.test("a chunked body is copied verbatim with extensions and trailers, and no further", async () => {
  const body = "4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n";
  const from = new BufferedWire(new ScriptWire([body.slice(0, 7), body.slice(7) + "NEXT"]));
  const to = new ScriptWire([]);
  const n = await copyBody(from, to, { kind: "chunked" });
  assert.equal(to.text(), body);
  assert.equal(n, body.length);
  assert.equal(dec.decode((await from.read())!), "NEXT");
});

Deno.test("a Content-Length body stops at its length and keeps the next message", async () => {
  const from = new BufferedWire(new ScriptWire(["hel", "loGET"]));
  const to = new ScriptWire([]);
  assert.equal(await copyBody(from, to, { kind: "length", length: 5 }), 5);
  assert.equal(to.text(), "hello");
  assert.equal(dec.decode((await from.read())!), "GET");
});

Deno.test("a body cut short is reported as truncated", async () => {
  const from = new BufferedWire(new ScriptWire(["hel"]));
  await assert.rejects(
    () => copyBody(from, new ScriptWire([]), { kind: "length", length: 5 }),
    TruncatedError,
  );
});

Deno.test("an idle connection closed by its peer is noticed before reuse", async () => {
  const w = new BufferedWire(new ScriptWire([]));
  w.watchIdle();
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(w.closedWhileIdle, true);
});

Deno.test("bytes read while watching an idle connection go to the next reader", async () => {
  const w = new BufferedWire(new ScriptWire(["HTTP/1.1 200 OK\r\n\r\n"]));
  w.watchIdle();
  assert.equal(w.closedWhileIdle, false);
  const head = await w.readHead(1024);
  assert.equal(dec.decode(head!), "HTTP/1.1 200 OK\r\n\r\n");
});
