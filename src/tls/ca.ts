/**
 * The bottle's certificate authorities, minted in-process so that no CA key
 * ever touches a tool's argv or a shared directory before it is needed: one
 * CA per bottle for egress (trusted by the agent), one for pipelock's own
 * interception. EC P-256 because pipelock accepts only that, and short-lived
 * because a bottle is: a leaked CA key stops being useful within days.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { privateKeyToPkcs8Der, toPem, toSec1Pem } from "./pem.ts";

x509.cryptoProvider.set(crypto);

/** ECDSA over P-256 with SHA-256, for keys and signatures alike. */
export const EC_ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

const DAY_MS = 24 * 60 * 60 * 1000;
/** CA and leaves start a little in the past: a VM's clock may lag the host's. */
export const BACKDATE_MS = 60 * 60 * 1000;

export interface MintCaOptions {
  /** Subject common name. Default "bottle CA". */
  commonName?: string;
  /** Days the CA stays valid. Default 7. */
  validityDays?: number;
  /** Clock, for tests. */
  now?: Date;
}

/** A freshly minted CA, as the files the bundle and the agent need. */
export interface MintedCa {
  /** The CA certificate (PEM). Goes into the agent's trust store. */
  certPem: string;
  /** The CA private key as PKCS#8 PEM (`BEGIN PRIVATE KEY`). */
  keyPem: string;
  /** The same key as SEC1 PEM (`BEGIN EC PRIVATE KEY`), the encoding pipelock requires. */
  sec1KeyPem: string;
}

/** A loaded CA that can sign leaves. */
export interface CertificateAuthority {
  readonly cert: x509.X509Certificate;
  readonly certPem: string;
  readonly privateKey: CryptoKey;
}

/** Mints a self-signed P-256 CA that may sign server certificates and nothing below them. */
export async function mintCa(options: MintCaOptions = {}): Promise<MintedCa> {
  const validityDays = options.validityDays ?? 7;
  if (!(validityDays > 0)) {
    throw new RangeError(`CA validity must be a positive number of days: got ${validityDays}`);
  }
  const now = options.now ?? new Date();
  const keys = await crypto.subtle.generateKey(EC_ALGORITHM, true, ["sign", "verify"]);
  const name = `CN=${escapeDnValue(options.commonName ?? "bottle CA")}`;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: name,
    issuer: name,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + validityDays * DAY_MS),
    signingAlgorithm: EC_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    extensions: [
      // pathLength 0: this CA signs leaves only, never another CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyPem = toPem(await crypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY");
  return { certPem: cert.toString("pem") + "\n", keyPem, sec1KeyPem: toSec1Pem(keyPem) };
}

/** Loads a CA from PEM text; the key may be PKCS#8 or SEC1. */
export async function loadCa(certPem: string, keyPem: string): Promise<CertificateAuthority> {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(certPem);
  } catch (err) {
    throw new Error(`Cannot parse CA certificate: ${errorText(err)}`);
  }
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new Error(`Certificate "${cert.subject}" is not a CA: no basicConstraints CA`);
  let privateKey: CryptoKey;
  try {
    privateKey = await crypto.subtle.importKey(
      "pkcs8",
      privateKeyToPkcs8Der(keyPem),
      EC_ALGORITHM,
      false,
      ["sign"],
    );
  } catch (err) {
    // Never echo key material: only say what kind of failure it was.
    throw new Error(`Cannot load CA private key as EC P-256: ${errorText(err)}`);
  }
  await assertKeyMatches(cert, privateKey);
  return { cert, certPem: cert.toString("pem") + "\n", privateKey };
}

/** Loads a CA from a certificate file and a key file (PEM). */
export async function loadCaFiles(
  certFile: string,
  keyFile: string,
): Promise<CertificateAuthority> {
  const certPem = await readText(certFile, "CA certificate");
  const keyPem = await readText(keyFile, "CA key");
  return await loadCa(certPem, keyPem);
}

/** Signs a probe and checks it with the certificate's key, so a mismatched pair fails at load. */
async function assertKeyMatches(cert: x509.X509Certificate, key: CryptoKey): Promise<void> {
  const probe = crypto.getRandomValues(new Uint8Array(32));
  const sig = await crypto.subtle.sign(EC_ALGORITHM, key, probe);
  const pub = await cert.publicKey.export(EC_ALGORITHM, ["verify"]);
  if (!(await crypto.subtle.verify(EC_ALGORITHM, pub, sig, probe))) {
    throw new Error(`CA private key does not belong to certificate "${cert.subject}"`);
  }
}

/** 16 random bytes, top bit clear so the DER INTEGER stays positive. */
export function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f | 0x01;
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Escapes RFC 4514 special characters in a DN attribute value. */
export function escapeDnValue(value: string): string {
  return value.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`);
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    throw new Error(`Cannot read ${what} "${path}": ${errorText(err)}`);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
