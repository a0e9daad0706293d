/**
 * The pipelock config for one bottle's bundle. Pipelock (DLP forward proxy,
 * github.com/luckyPipewrench/pipelock) sits on bundle loopback behind
 * egress and dials the internet itself; this file is the only place that
 * decides what it enforces.
 *
 * Pipelock cannot run here, so every key below was taken from its
 * documentation at {@link PIPELOCK_DOC_REF}, and the unit test checks each
 * emitted key path against `tests/testdata/pipelock/documented_keys.json`:
 * pipelock rejects unknown keys at startup, so a misspelt key would stop the
 * bundle rather than be ignored. Everything not written here keeps
 * pipelock's documented default.
 */
import { stringify } from "yaml";

/**
 * The pipelock documentation this generator was checked against: the
 * newest configuration reference found (3.4.0-era text; the v3.5.0 tag's
 * own copy could not be told apart). Every key emitted here is documented
 * there and in the earlier reference (`005f908`), with the same defaults.
 */
export const PIPELOCK_DOC_REF =
  "luckyPipewrench/pipelock@936c0f5e308e06bfa46e07ab3c42d6057f78c5b5:docs/configuration.md";

export interface PipelockConfigInput {
  /** Hosts the bottle may reach: exact names and `*.suffix` wildcards. */
  allowlist: string[];
  /** Loopback `host:port` pipelock listens on, like `127.0.0.1:8888`. */
  listen: string;
  /** Absolute path (inside the bundle) of the interception CA certificate PEM. */
  caCertPath: string;
  /** Absolute path of the CA's EC P-256 private key, SEC1 PEM. */
  caKeyPath: string;
  /** Header names egress injects on credential routes. */
  injectedHeaders: string[];
  /** Absolute path of pipelock's audit log; stdout when absent. */
  logPath?: string;
}

/**
 * What pipelock skips in `header_mode: all` when `ignore_headers` is left
 * empty: hop-by-hop and structural headers. The docs name the list only as
 * "(hop-by-hop + structural)"; the names are pipelock's own default in
 * `internal/config/config.go` (`ApplyDefaults`). Setting `ignore_headers`
 * replaces that default rather than adding to it, so it is repeated here.
 */
export const PIPELOCK_DEFAULT_IGNORE_HEADERS: readonly string[] = [
  "Connection",
  "Keep-Alive",
  "Proxy-Authenticate",
  "Te",
  "Trailer",
  "Transfer-Encoding",
  "Upgrade",
  "Host",
  "Content-Length",
  "Content-Type",
  "Accept",
  "Accept-Encoding",
  "User-Agent",
];

const HEADER_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * The allowlist as pipelock gets it: trimmed, lower case (pipelock matches
 * case-insensitively), one trailing dot dropped, duplicates removed, sorted
 * so the same bottle always yields the same file. Throws on an entry that is
 * not an exact host or `*.suffix` wildcard, which pipelock would refuse.
 */
export function normalizeAllowlist(hosts: readonly string[]): string[] {
  const out = new Set<string>();
  for (const raw of hosts) {
    let host = raw.trim().toLowerCase();
    if (host.endsWith(".")) host = host.slice(0, -1);
    const problem = host === "" ? "empty host" : hostPatternProblem(host);
    if (problem !== undefined) {
      throw new Error(`Cannot allow "${raw}" in pipelock: ${problem}`);
    }
    out.add(host);
  }
  return [...out].sort();
}

/**
 * Header names in Go's canonical form (`x-api-key` -> `X-Api-Key`), the form
 * pipelock's own lists use, deduplicated case-insensitively and sorted.
 */
export function normalizeHeaderNames(names: readonly string[]): string[] {
  const out = new Map<string, string>();
  for (const raw of names) {
    const name = raw.trim();
    if (!HEADER_TOKEN.test(name)) {
      throw new Error(`Cannot exclude header "${raw}" from pipelock scanning: not a header name`);
    }
    const canonical = name.toLowerCase().replace(
      /(^|-)([a-z])/g,
      (_m, sep, c) => sep + c.toUpperCase(),
    );
    out.set(canonical.toLowerCase(), canonical);
  }
  return [...out.values()].sort();
}

/** Returns the pipelock YAML config for one bottle. Pure; throws on bad input. */
export function pipelockConfig(input: PipelockConfigInput): string {
  const allowlist = normalizeAllowlist(input.allowlist);
  if (allowlist.length === 0) {
    // Pipelock refuses to start in strict mode with an empty api_allowlist.
    throw new Error(
      "Cannot configure pipelock: the allowlist is empty, and strict mode needs at least one host",
    );
  }
  checkListen(input.listen);
  checkAbsolute("CA certificate", input.caCertPath);
  checkAbsolute("CA key", input.caKeyPath);
  if (input.logPath !== undefined) checkAbsolute("log", input.logPath);

  const injected = normalizeHeaderNames(input.injectedHeaders);
  const base = new Set(PIPELOCK_DEFAULT_IGNORE_HEADERS.map((h) => h.toLowerCase()));
  const ignoreHeaders = [
    ...PIPELOCK_DEFAULT_IGNORE_HEADERS,
    ...injected.filter((h) => !base.has(h.toLowerCase())),
  ];

  const config = {
    version: 1,
    /**
     * Strict: default deny. Only `api_allowlist` hosts are reachable; enforce
     * on, so findings block rather than warn; no block hints, which would
     * tell the agent which rule and knob it tripped.
     */
    mode: "strict",
    enforce: true,
    explain_blocks: false,
    api_allowlist: allowlist,
    /** The one listener; the forward proxy and `/health` share it. */
    fetch_proxy: { listen: input.listen },
    /**
     * Forward proxy on (off by default): egress reaches pipelock with
     * CONNECT and absolute-form requests, as agents use HTTPS_PROXY. SNI
     * must match the CONNECT target (pipelock's default, kept explicit).
     */
    forward_proxy: { enabled: true, sni_verification: true },
    /**
     * TLS interception with the bottle's own CA, so DLP sees request bodies
     * and headers inside tunnels instead of only the host name. No
     * passthrough domains: every allowed host is inspected.
     */
    tls_interception: {
      enabled: true,
      ca_cert: input.caCertPath,
      ca_key: input.caKeyPath,
      passthrough_domains: [],
    },
    /**
     * Request body and header DLP, blocking, every header scanned (`all`,
     * not just a sensitive list). Header scanning ignores the destination,
     * so the credentials egress injects would trip it: their header names
     * join pipelock's default ignore list in the routes' pipelock alone
     * (`injectedHeaders`), which only routed connections reach. pipelock's
     * `suppress` cannot stand in: it matches a finding's pattern and URL,
     * header and body alike, and not at all in older releases.
     */
    request_body_scanning: {
      enabled: true,
      action: "block",
      scan_headers: true,
      header_mode: "all",
      ignore_headers: ignoreHeaders,
    },
    /** DLP defaults on: the built-in patterns and the environment-leak check. */
    dlp: { include_defaults: true, scan_env: true },
    /**
     * Taint observed and logged, not enforced. Under the default policy a
     * POST after any untrusted response (an LLM API answer counts) is "ask",
     * and with no terminal to ask pipelock blocks it: the agent's second
     * model call would fail. Allowlist and DLP still enforce.
     */
    taint: { policy: "permissive" },
    /** Sentry off: nothing about a bottle's traffic leaves for a third party. */
    sentry: { enabled: false, dsn: "" },
    /** JSON audit lines, allowed and blocked requests both. */
    logging: {
      format: "json",
      ...(input.logPath === undefined
        ? { output: "stdout" }
        : { output: "file", file: input.logPath }),
      include_allowed: true,
      include_blocked: true,
    },
  };

  const header = [
    "# pipelock config for one bottle, generated by bottle: do not edit.",
    `# Keys follow ${PIPELOCK_DOC_REF}.`,
  ].join("\n");
  return `${header}\n${
    stringify(config, { lineWidth: 0, defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN" })
  }`;
}

function checkListen(listen: string): void {
  const m = /^(.+):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : 0;
  if (!m || !LOOPBACK_HOSTS.has(m[1] ?? "") || port < 1 || port > 65535) {
    throw new Error(
      `Cannot configure pipelock to listen on "${listen}": expected a loopback host:port, like "127.0.0.1:8888"`,
    );
  }
}

function checkAbsolute(what: string, path: string): void {
  if (!path.startsWith("/") || path.includes("\n")) {
    throw new Error(`Cannot configure pipelock: the ${what} path "${path}" must be absolute`);
  }
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Why `pattern` is not an allowlist entry pipelock takes (an exact host or `*.suffix`). */
export function hostPatternProblem(pattern: string): string | undefined {
  const p = pattern.toLowerCase();
  const name = p.startsWith("*.") ? p.slice(2) : p;
  if (name.includes("*")) return 'a wildcard may only be a leading "*."';
  const labels = name.split(".");
  if (p.startsWith("*.") && labels.length < 2) {
    return 'a wildcard needs at least two labels after "*." ("*.example.com")';
  }
  if (name.length > 253 || !labels.every((l) => LABEL.test(l))) {
    return "not a DNS host name";
  }
  return undefined;
}
