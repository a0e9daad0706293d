/**
 * Leaves per host name, minted once and reused: an agent opens many
 * connections to the same API host and each handshake must not pay for a
 * key generation and a signature. Concurrent misses share one mint.
 */
import type { CertificateAuthority } from "./ca.ts";
import { type LeafCert, mintLeaf, type MintLeafOptions } from "./leaf.ts";
import { normalizeHost } from "./pem.ts";

export interface LeafCacheOptions extends Omit<MintLeafOptions, "now"> {
  /** Most hosts kept; the least recently used goes first. Default 1000. */
  maxEntries?: number;
  /** Re-mint a leaf this long before it expires. Default 1 hour. */
  renewBeforeMs?: number;
  /** Clock, for tests. */
  now?: () => Date;
}

export class LeafCache {
  readonly #ca: CertificateAuthority;
  readonly #options: LeafCacheOptions;
  readonly #entries = new Map<string, Promise<LeafCert>>();
  #mints = 0;

  constructor(ca: CertificateAuthority, options: LeafCacheOptions = {}) {
    this.#ca = ca;
    this.#options = options;
  }

  /** How many leaves were minted so far (cache misses), for tests and metrics. */
  get mintCount(): number {
    return this.#mints;
  }

  /** The leaf for `host`, minting it on first use or when it nears expiry. */
  async get(host: string): Promise<LeafCert> {
    const key = normalizeHost(host);
    const now = this.#options.now?.() ?? new Date();
    const cached = this.#entries.get(key);
    if (cached) {
      const leaf = await cached.catch(() => undefined);
      const renewBefore = this.#options.renewBeforeMs ?? 60 * 60 * 1000;
      if (leaf && leaf.notAfter.getTime() - renewBefore > now.getTime()) {
        // Refresh recency: Map iteration order is insertion order.
        this.#entries.delete(key);
        this.#entries.set(key, cached);
        return leaf;
      }
      if (this.#entries.get(key) === cached) this.#entries.delete(key);
      else {
        const other = this.#entries.get(key);
        if (other) return await other;
      }
    }
    const minted = mintLeaf(this.#ca, key, {
      now,
      ...(this.#options.validityMs !== undefined ? { validityMs: this.#options.validityMs } : {}),
    });
    this.#mints++;
    this.#entries.set(key, minted);
    minted.catch(() => {
      if (this.#entries.get(key) === minted) this.#entries.delete(key);
    });
    this.#evict();
    return await minted;
  }

  #evict(): void {
    const max = this.#options.maxEntries ?? 1000;
    while (this.#entries.size > max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }
}
