/**
 * The agent file's schema: the single source of truth for what an agent
 * definition may say. Validation messages, the JSON Schema printed by
 * `bottle config schema` and the TypeScript types all come from here.
 */
import { z } from "zod";
import { FRAMING_HEADERS, parseRouteHost, routeHostProblem } from "../bundle/egress/routes.ts";

const HOSTNAME =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** An exact hostname, or a `*.suffix` wildcard matching every subdomain of suffix. */
export const hostPattern = z.string().refine(
  (s) => HOSTNAME.test(s.startsWith("*.") ? s.slice(2) : s),
  { error: (iss) => `expected a hostname or "*.domain", got ${JSON.stringify(iss.input)}` },
);

const envName = z.string().refine((s) => ENV_NAME.test(s), {
  error: (iss) => `expected an environment variable name, got ${JSON.stringify(iss.input)}`,
});

/**
 * Where a secret's value comes from on the host. Resolved only at launch,
 * never printed: a plan shows the reference, not the value.
 */
export const secretSource = z.strictObject({
  env: envName.optional().describe("Read the value from this host environment variable"),
  file: z.string().min(1).optional().describe(
    "Read the value from this file (trailing newline dropped)",
  ),
  command: z.array(z.string()).min(1).optional().describe(
    "Run this argv on the host and use its stdout (e.g. [gh, auth, token])",
  ),
}).superRefine((v, ctx) => {
  const n = [v.env, v.file, v.command].filter((x) => x !== undefined).length;
  if (n !== 1) {
    ctx.addIssue({ code: "custom", message: "expected exactly one of env, file or command" });
  }
});

export const route = z.strictObject({
  host: z.string().superRefine((h, ctx) => {
    const problem = routeHostProblem(h);
    if (problem) ctx.addIssue({ code: "custom", message: `${JSON.stringify(h)}: ${problem}` });
  }).describe('Host (port 443) or "host:port" whose requests get the credential; no wildcards'),
  header: z.string().refine((s) => HEADER_NAME.test(s), {
    error: (iss) => `expected an HTTP header name, got ${JSON.stringify(iss.input)}`,
  }).refine((s) => !FRAMING_HEADERS.has(s.toLowerCase()), {
    error: (iss) =>
      `${JSON.stringify(iss.input)} frames or routes the request: a credential cannot go there`,
  }).default("Authorization").describe("Header the real credential is injected into"),
  template: z.string().refine((s) => s.includes("{value}"), {
    error: (iss) => `expected a template containing "{value}", got ${JSON.stringify(iss.input)}`,
  }).default("Bearer {value}").describe('Header value, "{value}" replaced by the secret'),
  placeholder_env: envName.optional().describe(
    "Env var set inside the bottle to a placeholder, for tools that insist on one",
  ),
  value: secretSource.describe("Where the real credential comes from on the host"),
});

const gitUrl = z.string().refine(
  (s) => /^(https?|ssh|file):\/\/\S+$|^[\w.-]+@[\w.-]+:\S+$/.test(s),
  {
    error: (iss) =>
      `expected a git URL (https://, ssh://, file:// or user@host:path), got ${
        JSON.stringify(iss.input)
      }`,
  },
).refine((s) => !/^[a-z]+:\/\/[^/@]*:[^/@]*@/i.test(s), {
  // The URL is the agent's origin: a password in it would be the agent's.
  error: "a password in the URL would reach the agent: put it in identity.token instead",
});

export const gitUpstream = z.strictObject({
  url: gitUrl.describe("The real upstream; only the git gate talks to it"),
  identity: z.strictObject({
    ssh_key: secretSource.optional().describe("Private key used for pushes over SSH"),
    token: secretSource.optional().describe("Token used for pushes over HTTPS"),
  }).optional().describe("Push identity; never enters the bottle"),
  known_hosts: z.string().min(1).optional().describe(
    "ssh upstreams: the known_hosts file the server's key is checked against (default ~/.ssh/known_hosts)",
  ),
  branches: z.array(z.string().min(1)).default(["bottle/*"]).describe(
    "Branch patterns the agent may push to",
  ),
  path: z.string().refine((s) => s.startsWith("/"), {
    error: (iss) => `expected an absolute path inside the bottle, got ${JSON.stringify(iss.input)}`,
  }).optional().describe("Where to clone inside the bottle (default /workspace/<repo>)"),
});

/** A size like "64m": for limits in bytes. */
const size = z.string().refine((s) => /^\d+(\.\d+)?[kmg]?$/i.test(s), {
  error: (iss) => `expected a size like "64m" or "1g", got ${JSON.stringify(iss.input)}`,
});

/**
 * What the git gate allows in a push, for every upstream it serves (the
 * host repository and each declared one). Branch patterns are per upstream.
 */
export const pushPolicy = z.strictObject({
  max_size: size.default("64m").describe("Largest push accepted (the objects it adds)"),
  allow_tags: z.boolean().default(false).describe("Accept new tags (never moved or deleted ones)"),
  hooks: z.array(z.string().min(1)).default([]).describe(
    'Shell commands run in the bundle for each push ("old new ref" lines on stdin); a non-zero exit rejects it',
  ),
});

const memory = z.string().refine((s) => /^\d+(\.\d+)?[kmg]?$/i.test(s), {
  error: (iss) => `expected a size like "4g" or "512m", got ${JSON.stringify(iss.input)}`,
});

export const resources = z.strictObject({
  cpus: z.number().positive().max(256).optional(),
  memory: memory.optional(),
  pids: z.number().int().min(16).optional(),
});

export const mount = z.strictObject({
  source: z.string().min(1).describe("Host path (relative to the agent file)"),
  target: z.string().refine((s) => s.startsWith("/"), {
    error: (iss) => `expected an absolute path inside the bottle, got ${JSON.stringify(iss.input)}`,
  }),
  readonly: z.boolean().default(true),
});

export const image = z.strictObject({
  dockerfile: z.string().min(1).describe("Dockerfile path (relative to the agent file)"),
  context: z.string().min(1).optional().describe("Build context (default: the Dockerfile's dir)"),
  build_args: z.record(z.string(), z.string()).default({}),
});

export const DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com";

/**
 * The Anthropic API's address: an https URL with no credentials, query or
 * fragment (a path is kept, for gateways that serve the API under one).
 * Only https: egress injects the credential inside TLS it terminates, and
 * refuses plain http to a routed host.
 */
export const anthropicBaseUrl = z.string().superRefine((s, ctx) => {
  const problem = baseUrlProblem(s);
  // The URL is quoted without any userinfo: that may be a secret.
  const shown = JSON.stringify(s.replace(/^([a-z]+:\/\/)[^/@]*@/i, "$1…@"));
  if (problem) ctx.addIssue({ code: "custom", message: `${shown}: ${problem}` });
}).describe("The Anthropic API (or an LLM gateway speaking it), e.g. https://llm.example.com");

function baseUrlProblem(s: string): string | undefined {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return "expected a URL like https://llm.example.com";
  }
  if (u.protocol !== "https:") return "expected an https:// URL";
  if (u.username || u.password) {
    return "credentials cannot be in the URL (the agent would see them): use api_key or oauth_token";
  }
  if (u.search || u.hash || s.includes("?") || s.includes("#")) {
    return "expected no query or fragment";
  }
  const hostProblem = routeHostProblem(u.host);
  return hostProblem ? `host ${JSON.stringify(u.host)}: ${hostProblem}` : undefined;
}

/**
 * The Anthropic API's host as a route host (`name`, or `name:port` off 443)
 * and the URL Claude Code is given (no trailing slash).
 */
export function anthropicEndpoint(baseUrl: string): { routeHost: string; url: string } {
  const u = new URL(baseUrl);
  const url = `${u.origin}${u.pathname.replace(/\/+$/, "")}`;
  return { routeHost: u.host.toLowerCase(), url };
}

/** How the Anthropic credential reaches the API; the bottle only sees a placeholder. */
export const anthropic = z.union([
  z.enum(["auto", "none"]),
  z.strictObject({
    api_key: secretSource.optional(),
    oauth_token: secretSource.optional(),
    base_url: anthropicBaseUrl.optional(),
  }).refine((o) => !(o.api_key && o.oauth_token), {
    error: "use either api_key or oauth_token, not both",
  }),
]).describe(
  "auto: ANTHROPIC_API_KEY, else CLAUDE_CODE_OAUTH_TOKEN from the host; none: no credential; " +
    "{ base_url } alone keeps the auto lookup",
);

/** The URL of the API the agent's Anthropic setting names. */
export function anthropicBaseUrlOf(setting: z.infer<typeof anthropic>): string {
  return typeof setting === "object" && setting.base_url
    ? setting.base_url
    : DEFAULT_ANTHROPIC_BASE_URL;
}

/** `90s`, `30m`, `2h`: whole seconds, minutes or hours. */
export const duration = z.string().regex(/^[1-9]\d{0,5}[smh]$/, {
  error: 'expected a duration like "90s", "30m" or "2h"',
});

/** Seconds in a duration the schema accepted. */
export function durationSeconds(d: string): number {
  const n = Number(d.slice(0, -1));
  return n * { s: 1, m: 60, h: 3600 }[d.slice(-1) as "s" | "m" | "h"];
}

/** A supervise request waits at most a week: longer is nobody's answer (and past a timer's range). */
const MAX_SUPERVISE_SECONDS = 7 * 24 * 3600;

export const agent = z.strictObject({
  description: z.string().optional(),
  backend: z.enum(["docker", "smolmachines"]).default("docker"),
  image: image.optional().describe(
    "Build the agent image from this Dockerfile (default: built-in)",
  ),
  command: z.array(z.string().min(1)).min(1).default(["claude"]).describe("The agent program"),
  prompt: z.string().optional().describe("Appended system prompt"),
  prompt_file: z.string().optional().describe("File holding the appended system prompt"),
  skills: z.array(z.string().min(1)).default([]).describe("Directories copied into the skills dir"),
  allowed_domains: z.array(hostPattern).default([]).describe("Extra hosts the agent may reach"),
  routes: z.array(route).default([]).describe("Credentials injected outside the bottle"),
  anthropic: anthropic.default("auto"),
  git: z.array(gitUpstream).default([]),
  workspace: z.enum(["git", "mount", "none"]).optional().describe(
    "What /workspace holds: the current repository cloned through the git gate (git, the default inside a repository), the current directory mounted read-write (mount), or nothing (none, the default elsewhere)",
  ),
  push: pushPolicy.default({ max_size: "64m", allow_tags: false, hooks: [] }).describe(
    "What the git gate accepts in a push",
  ),
  supervise: z.union([
    z.boolean(),
    z.strictObject({
      timeout: duration.default("30m").refine((d) => durationSeconds(d) <= MAX_SUPERVISE_SECONDS, {
        error: "at most 7 days (168h)",
      }).describe(
        "How long a request waits for the human before the agent is told nobody answered",
      ),
    }),
  ]).default(false).describe(
    "The human-approval MCP server (bottle supervise answers it): true, or { timeout }",
  ),
  env: z.record(
    envName,
    z.string().refine((v) => !v.includes("\0"), {
      error: "a NUL character cannot be in an env value",
    }),
  ).default({}).describe("Plain (non-secret) env vars"),
  resources: resources.default({}),
  mounts: z.array(mount).default([]),
}).superRefine((a, ctx) => {
  if ("ANTHROPIC_BASE_URL" in a.env) {
    ctx.addIssue({
      code: "custom",
      path: ["env", "ANTHROPIC_BASE_URL"],
      message:
        "set anthropic: { base_url: URL } instead: the API's host must be allowlisted and routed",
    });
  }
  if (a.prompt !== undefined && a.prompt_file !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["prompt_file"],
      message: "use either prompt or prompt_file, not both",
    });
  }
  // One credential per host and port: a second route would be ambiguous.
  const seen = new Map<string, number>();
  const anthropicHost = a.anthropic === "none" ? undefined : (() => {
    const url = anthropicBaseUrlOf(a.anthropic);
    if (baseUrlProblem(url)) return undefined;
    const { name, port } = parseRouteHost(anthropicEndpoint(url).routeHost);
    return `${name}:${port}`;
  })();
  a.routes.forEach((r, i) => {
    if (routeHostProblem(r.host)) return;
    const { name, port } = parseRouteHost(r.host);
    const key = `${name}:${port}`;
    if (seen.has(key)) {
      ctx.addIssue({
        code: "custom",
        path: ["routes", i, "host"],
        message: `a second route for ${key} (routes[${seen.get(key)}] has it already)`,
      });
    }
    seen.set(key, i);
    if (anthropicHost && key === anthropicHost) {
      ctx.addIssue({
        code: "custom",
        path: ["routes", i, "host"],
        message:
          `${r.host} is routed by the anthropic setting already: set anthropic: none to route it yourself`,
      });
    }
  });
});

const agentName = z.string().refine((s) => /^[a-z][a-z0-9-]{0,30}$/.test(s), {
  error: (iss) =>
    `expected an agent name of lowercase letters, digits and "-" (at most 31), got ${
      JSON.stringify(iss.input)
    }`,
});

export const build = z.strictObject({
  ca_certs: z.array(z.string().min(1)).default([]).describe(
    "Extra CA certificates trusted while building images (TLS-intercepting proxies)",
  ),
});

export const agentFile = z.strictObject({
  version: z.literal(1).describe("Schema version of this file"),
  agents: z.record(agentName, agent).default({}),
  build: build.default({ ca_certs: [] }),
});

export type AgentFile = z.output<typeof agentFile>;
export type AgentDefinition = z.output<typeof agent>;
export type AgentInput = z.input<typeof agent>;
export type SecretSource = z.output<typeof secretSource>;
export type Route = z.output<typeof route>;
export type GitUpstream = z.output<typeof gitUpstream>;
export type PushPolicy = z.output<typeof pushPolicy>;
export type WorkspaceMode = NonNullable<AgentDefinition["workspace"]>;
