import assert from "node:assert/strict";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { loadCa, loadCaFiles, mintCa } from "../../src/tls/ca.ts";

const DAY = 24 * 60 * 60 * 1000;

Deno.test("mintCa makes a P-256 CA allowed to sign certificates and CRLs only", async () => {
  const ca = await mintCa({ commonName: "unit CA" });
  const cert = new x509.X509Certificate(ca.certPem);
  assert.equal(cert.subject, "CN=unit CA");
  assert.equal(cert.issuer, cert.subject);
  assert.equal((cert.publicKey.algorithm as EcKeyAlgorithm).namedCurve, "P-256");
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  assert.equal(bc?.ca, true);
  assert.equal(bc?.critical, true);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  assert.equal(ku?.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  assert.ok(await cert.verify({ signatureOnly: true }), "self-signature must verify");
});

Deno.test("mintCa defaults to seven days of validity and honours validityDays", async () => {
  const now = new Date();
  const week = new x509.X509Certificate((await mintCa({ now })).certPem);
  assert.equal(week.notAfter.getTime() - Math.floor(now.getTime() / 1000) * 1000, 7 * DAY);
  const short = new x509.X509Certificate((await mintCa({ now, validityDays: 2 })).certPem);
  assert.equal(short.notAfter.getTime() - Math.floor(now.getTime() / 1000) * 1000, 2 * DAY);
  assert.ok(short.notBefore.getTime() <= now.getTime());
});

Deno.test("mintCa rejects a non-positive validity", async () => {
  await assert.rejects(() => mintCa({ validityDays: 0 }), /positive number of days/);
});

Deno.test("mintCa returns the key as PKCS#8 and as the SEC1 PEM pipelock requires", async () => {
  const ca = await mintCa();
  assert.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.match(ca.sec1KeyPem, /^-----BEGIN EC PRIVATE KEY-----\n/);
});

Deno.test("loadCa accepts the key in either encoding", async () => {
  const ca = await mintCa();
  for (const key of [ca.keyPem, ca.sec1KeyPem]) {
    const loaded = await loadCa(ca.certPem, key);
    assert.equal(loaded.cert.subject, "CN=bottle CA");
  }
});

Deno.test("loadCa refuses a key that does not belong to the certificate", async () => {
  const a = await mintCa();
  const b = await mintCa();
  await assert.rejects(() => loadCa(a.certPem, b.keyPem), /does not belong to certificate/);
});

Deno.test("loadCaFiles names the file it cannot read", async () => {
  await assert.rejects(
    () => loadCaFiles("/nonexistent/ca.pem", "/nonexistent/key.pem"),
    /Cannot read CA certificate "\/nonexistent\/ca.pem"/,
  );
});

Deno.test("loadCaFiles loads a CA written to disk", async () => {
  const ca = await mintCa();
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/ca.pem`, ca.certPem);
    await Deno.writeTextFile(`${dir}/ca-key.pem`, ca.sec1KeyPem);
    const loaded = await loadCaFiles(`${dir}/ca.pem`, `${dir}/ca-key.pem`);
    assert.equal(loaded.certPem.trim(), ca.certPem.trim());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
