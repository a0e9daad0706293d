/**
 * Server certificates for one host, signed by a bottle CA: what the egress
 * daemon presents when it terminates an agent's TLS for a credential route.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import {
  BACKDATE_MS,
  type CertificateAuthority,
  EC_ALGORITHM,
  escapeDnValue,
  randomSerial,
} from "./ca.ts";
import { isIpLiteral, normalizeHost, toPem } from "./pem.ts";

export interface LeafCert {
  /** The leaf certificate (PEM). */
  certPem: string;
  /** Its private key, PKCS#8 PEM. */
  keyPem: string;
  notAfter: Date;
}

export interface MintLeafOptions {
  /** How long the leaf lives, clamped to the CA's validity. Default 24 hours. */
  validityMs?: number;
  now?: Date;
}

const DEFAULT_LEAF_VALIDITY_MS = 24 * 60 * 60 * 1000;

/**
 * Mints a serverAuth leaf for `host` (or several names, the first being the
 * subject): a dNSName SAN for names, an iPAddress SAN for IP literals
 * (clients match IPs only against iPAddress entries).
 */
export async function mintLeaf(
  ca: CertificateAuthority,
  host: string | readonly string[],
  options: MintLeafOptions = {},
): Promise<LeafCert> {
  const names = (typeof host === "string" ? [host] : [...host]).map(normalizeHost);
  const name = names[0];
  if (!name || names.some((n) => n === "")) {
    throw new Error("Cannot mint a leaf certificate: empty host name");
  }
  const now = options.now ?? new Date();
  const notBefore = new Date(
    Math.max(ca.cert.notBefore.getTime(), now.getTime() - BACKDATE_MS),
  );
  const notAfter = new Date(
    Math.min(
      ca.cert.notAfter.getTime(),
      now.getTime() + (options.validityMs ?? DEFAULT_LEAF_VALIDITY_MS),
    ),
  );
  if (notAfter.getTime() <= now.getTime()) {
    throw new Error(`Cannot mint a leaf for "${name}": CA "${ca.cert.subject}" has expired`);
  }
  const keys = await crypto.subtle.generateKey(EC_ALGORITHM, true, ["sign", "verify"]);
  const sans: x509.JsonGeneralName[] = names.map((n) =>
    isIpLiteral(n) ? { type: "ip", value: n } : { type: "dns", value: n }
  );
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${escapeDnValue(name)}`,
    issuer: ca.cert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: EC_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(sans, false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  return {
    certPem: cert.toString("pem") + "\n",
    keyPem: toPem(await crypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY"),
    notAfter,
  };
}
