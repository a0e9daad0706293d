import assert from "node:assert/strict";
import { encodeStartInput, readStartInput } from "../../src/bundle/init/start_input.ts";

function streamOf(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const chunk of chunks) c.enqueue(chunk);
      // No close: the container's stdin stays open after the input.
    },
  });
}

Deno.test("start input: files and secrets come back exactly, however the bytes arrive", async () => {
  const files = new Map([["bundle.json", '{"a":1}\n'], ["egress-ca-key.pem", "KEY"]]);
  const secrets = { BOTTLE_ROUTE_0: "sk-secret-value" };
  const bytes = encodeStartInput(files, secrets);
  // One byte at a time, and followed by more input that must be left alone.
  const chunks = [...bytes].map((b) => new Uint8Array([b]));
  const got = await readStartInput(streamOf(...chunks, new TextEncoder().encode("trailing")));
  assert.deepEqual(
    [...got.files].map(([k, v]) => [k, new TextDecoder().decode(v)]),
    [["bundle.json", '{"a":1}\n'], ["egress-ca-key.pem", "KEY"]],
  );
  assert.deepEqual(got.secrets, secrets);
});

Deno.test("start input: a wrong header, a short body or a bad secret name is refused", async () => {
  const enc = new TextEncoder();
  await assert.rejects(() => readStartInput(streamOf(enc.encode("GET / HTTP/1.1\n"))), /header/);
  const good = encodeStartInput(new Map([["a", "b"]]), {});
  const short = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(good.subarray(0, good.length - 10));
      c.close();
    },
  });
  await assert.rejects(() => readStartInput(short), /ended early/);
  await assert.rejects(
    () => readStartInput(streamOf(enc.encode("bottle-start-input/1 999999999999\n"))),
    /too large/,
  );
  const badSecret = encodeStartInput(new Map(), { "bad name": "x" });
  await assert.rejects(() => readStartInput(streamOf(badSecret)), /Bad secret entry/);
  assert.throws(() => encodeStartInput(new Map([["secrets.json", "x"]]), {}), /reserved/);
});
