import assert from "node:assert/strict";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { type CertificateAuthority, loadCa, mintCa } from "../../src/tls/ca.ts";
import { mintLeaf } from "../../src/tls/leaf.ts";

async function testCa(validityDays = 7): Promise<{ ca: CertificateAuthority; certPem: string }> {
  const minted = await mintCa({ validityDays });
  return { ca: await loadCa(minted.certPem, minted.keyPem), certPem: minted.certPem };
}

Deno.test("a leaf chains to its CA", async () => {
  const { ca } = await testCa();
  const leaf = new x509.X509Certificate((await mintLeaf(ca, "api.example.com")).certPem);
  const chain = await new x509.X509ChainBuilder({ certificates: [ca.cert] }).build(leaf);
  assert.equal(chain.length, 2);
  assert.equal(chain[1]?.subject, ca.cert.subject);
  assert.ok(await leaf.verify({ publicKey: ca.cert.publicKey, signatureOnly: true }));
});

Deno.test("a leaf for a name has a dNSName SAN, serverAuth and is no CA", async () => {
  const { ca } = await testCa();
  const leaf = new x509.X509Certificate((await mintLeaf(ca, "API.Example.com.")).certPem);
  const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
  assert.deepEqual(san?.names.toJSON(), [{ type: "dns", value: "api.example.com" }]);
  const eku = leaf.getExtension(x509.ExtendedKeyUsageExtension);
  assert.deepEqual([...(eku?.usages ?? [])], [x509.ExtendedKeyUsage.serverAuth]);
  assert.equal(leaf.getExtension(x509.BasicConstraintsExtension)?.ca, false);
});

Deno.test("a leaf for an IP literal has an iPAddress SAN", async () => {
  const { ca } = await testCa();
  for (const [host, value] of [["127.0.0.1", "127.0.0.1"], ["[::1]", "::1"]]) {
    const leaf = new x509.X509Certificate((await mintLeaf(ca, host!)).certPem);
    const names = leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON();
    assert.equal(names?.[0]?.type, "ip");
    assert.equal(names?.[0]?.value, value);
  }
});

Deno.test("a leaf never outlives its CA", async () => {
  const { ca } = await testCa(0.5);
  const leaf = new x509.X509Certificate(
    (await mintLeaf(ca, "a.example", { validityMs: 30 * 24 * 3600 * 1000 })).certPem,
  );
  assert.ok(leaf.notAfter.getTime() <= ca.cert.notAfter.getTime());
  assert.ok(leaf.notBefore.getTime() >= ca.cert.notBefore.getTime());
});

Deno.test("minting a leaf from an expired CA fails", async () => {
  const { ca } = await testCa(1);
  const later = new Date(Date.now() + 2 * 24 * 3600 * 1000);
  await assert.rejects(() => mintLeaf(ca, "a.example", { now: later }), /has expired/);
});

Deno.test("a TLS client trusting only the CA completes a handshake with the leaf", async () => {
  const { ca, certPem } = await testCa();
  const leaf = await mintLeaf(ca, "leaf.test.local");
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: leaf.certPem,
    key: leaf.keyPem,
  });
  const accepted = (async () => {
    const conn = await listener.accept();
    try {
      await conn.handshake();
      await conn.write(new TextEncoder().encode("hi"));
    } finally {
      conn.close();
    }
  })();
  try {
    const tcp = await Deno.connect({
      hostname: "127.0.0.1",
      port: (listener.addr as Deno.NetAddr).port,
    });
    const client = await Deno.startTls(tcp, { hostname: "leaf.test.local", caCerts: [certPem] });
    try {
      const buf = new Uint8Array(2);
      assert.equal(await client.read(buf), 2);
      assert.equal(new TextDecoder().decode(buf), "hi");
    } finally {
      client.close();
    }
    await accepted;
  } finally {
    listener.close();
  }
});

Deno.test("a TLS client rejects the leaf for a different name", async () => {
  const { ca, certPem } = await testCa();
  const leaf = await mintLeaf(ca, "leaf.test.local");
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: leaf.certPem,
    key: leaf.keyPem,
  });
  const accepted = listener.accept().then(async (c) => {
    await c.handshake().catch(() => {});
    c.close();
  });
  try {
    const tcp = await Deno.connect({
      hostname: "127.0.0.1",
      port: (listener.addr as Deno.NetAddr).port,
    });
    const client = await Deno.startTls(tcp, { hostname: "other.test.local", caCerts: [certPem] });
    await assert.rejects(() => client.handshake(), /NotValidForName|not valid for name/i);
    client.close();
    await accepted;
  } finally {
    listener.close();
  }
});
