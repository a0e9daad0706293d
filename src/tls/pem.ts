/**
 * PEM plumbing shared by the CA and leaf minting: the one place that knows
 * which key encodings each consumer wants (WebCrypto and rustls take PKCS#8,
 * pipelock insists on SEC1) and how to tell an IP literal from a DNS name.
 */
import { createPrivateKey } from "node:crypto";
import { isIP } from "node:net";

/** Wraps DER bytes as PEM with the given label, 64 columns as RFC 7468 asks. */
export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const bytes = der instanceof Uint8Array ? der : new Uint8Array(der);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  const b64 = btoa(bin);
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Every PEM block with `label` in `text`, in order, as DER. */
export function pemBlocks(text: string, label: string): Uint8Array<ArrayBuffer>[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
  return [...text.matchAll(re)].map((m) => {
    const bin = atob((m[1] ?? "").replace(/\s+/g, ""));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  });
}

/** Splits a bundle into one PEM string per certificate (what `caCerts` wants). */
export function splitCertificates(text: string): string[] {
  return pemBlocks(text, "CERTIFICATE").map((der) => toPem(der, "CERTIFICATE"));
}

/** Converts a PKCS#8 or SEC1 private key PEM to PKCS#8 DER, the form WebCrypto imports. */
export function privateKeyToPkcs8Der(pem: string): Uint8Array<ArrayBuffer> {
  const key = createPrivateKey({ key: pem, format: "pem" });
  return Uint8Array.from(key.export({ type: "pkcs8", format: "der" }));
}

/** Re-encodes an EC private key PEM as SEC1 (`BEGIN EC PRIVATE KEY`), which pipelock requires. */
export function toSec1Pem(pem: string): string {
  const key = createPrivateKey({ key: pem, format: "pem" });
  return String(key.export({ type: "sec1", format: "pem" }));
}

/**
 * Normalises a host as it appears in a CONNECT target or Host header:
 * lower case, IPv6 brackets and a trailing dot removed.
 */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h.endsWith(".")) h = h.slice(0, -1);
  return h;
}

/** True when `host` (already normalised) is an IPv4 or IPv6 literal. */
export function isIpLiteral(host: string): boolean {
  return isIP(host) !== 0;
}
