/**
 * The egress daemon's config file: written by the host when it plans a
 * bottle, read once at daemon start. Secrets are not in it: each route names
 * the environment variable of the egress process that holds its value.
 */
import { z } from "zod";
import { registerSecret } from "../../proc/secrets.ts";
import { FRAMING_HEADERS, parseRouteHost, routeHostProblem } from "./routes.ts";

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const RouteSchema = z.strictObject({
  /** "api.anthropic.com" (port 443) or "api.example.com:8443". */
  host: z.string().superRefine((h, ctx) => {
    const problem = routeHostProblem(h);
    if (problem) ctx.addIssue({ code: "custom", message: `"${h}": ${problem}` });
  }),
  /** The header to set, e.g. "x-api-key" or "authorization". */
  header: z.string().regex(TOKEN, "must be an HTTP header name").refine(
    (h) => !FRAMING_HEADERS.has(h.toLowerCase()),
    "must not be a framing or connection header",
  ),
  /** "{value}" or e.g. "Bearer {value}". */
  template: z.string().refine((t) => t.includes("{value}"), 'must contain "{value}"')
    .refine((t) => !/[\r\n\0]/.test(t), "must not contain line breaks"),
  /** Name of the egress process's environment variable holding the secret. */
  valueEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name"),
});

const ListenSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(0).max(65535),
  /** Also serve on this Unix socket (what a network-less agent container reaches). */
  socket: z.string().startsWith("/").optional(),
});

const ProxyUrl = z.string().refine((u) => {
  try {
    const url = new URL(u);
    return url.protocol === "http:" && url.hostname !== "" && url.port !== "" &&
      url.pathname === "/" &&
      url.username === "" && url.search === "";
  } catch {
    return false;
  }
}, 'must be an http:// URL with host and port, like "http://127.0.0.1:8888"');

export const EgressConfigSchema = z.strictObject({
  /** Bottle name, written into every audit line. */
  bottle: z.string().min(1),
  listen: ListenSchema,
  /** pipelock's listen URL; every outgoing connection is a CONNECT through it. */
  upstreamProxy: ProxyUrl,
  /**
   * The routes' own pipelock, which alone exempts the injected headers from
   * its header scan: routed connections go there, everything else to
   * `upstreamProxy`. Absent: routed ones go to `upstreamProxy` too.
   */
  routesProxy: ProxyUrl.optional(),
  auditLog: z.string().min(1),
  /**
   * The hosts the bottle may reach (exact names and `*.suffix`), as pipelock
   * has them: egress refuses the rest itself, so its log tells a policy
   * denial from an upstream failure. Absent: pipelock alone decides.
   */
  allowlist: z.array(z.string().min(1)).optional(),
  /** The egress CA (PEM) that signs the leaves the agent sees on routed hosts. */
  caCertFile: z.string().min(1),
  caKeyFile: z.string().min(1),
  /** CAs trusted for TLS egress originates (pipelock's interception CA, test CAs), besides system roots. */
  upstreamCaFiles: z.array(z.string().min(1)),
  /**
   * The proxy credential every request to the outside must carry
   * (`Proxy-Authorization: Basic`, any user name, this password): the
   * variable of the egress process that holds it. Without it egress answers
   * whoever reaches its port, and on smolmachines any local process can.
   */
  proxyAuth: z.strictObject({
    tokenEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name"),
  }).optional(),
  routes: z.array(RouteSchema).superRefine((routes, ctx) => {
    const seen = new Set<string>();
    routes.forEach((r, i) => {
      const { name, port } = parseRouteHost(r.host);
      const key = `${name}:${port}`;
      if (seen.has(key)) {
        ctx.addIssue({ code: "custom", path: [i, "host"], message: `duplicate route "${r.host}"` });
      }
      seen.add(key);
    });
  }),
});

/** The egress config file, as the host writes it (JSON). */
export type EgressConfig = z.infer<typeof EgressConfigSchema>;
export type EgressRouteConfig = EgressConfig["routes"][number];

/** A route with its secret loaded. */
export interface ResolvedRoute {
  host: string;
  header: string;
  template: string;
  secret: string;
}

/**
 * Loads the proxy credential, when the config asks for one, and registers
 * it for redaction. Missing or short is fatal: egress never answers
 * unauthenticated where the plan said it must not.
 */
export function resolveProxyToken(
  proxyAuth: EgressConfig["proxyAuth"],
  getEnv: (name: string) => string | undefined = (n) => Deno.env.get(n),
): string | undefined {
  if (!proxyAuth) return undefined;
  const token = getEnv(proxyAuth.tokenEnv);
  if (token === undefined || token.length < 16) {
    throw new Error(
      `Proxy credential: environment variable "${proxyAuth.tokenEnv}" is not set or shorter than 16 characters`,
    );
  }
  registerSecret(token);
  return token;
}

/** Validates parsed JSON; `source` names the file in the error. */
export function parseEgressConfig(data: unknown, source: string): EgressConfig {
  const result = EgressConfigSchema.safeParse(data);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => {
    const path = i.path.map((p) => typeof p === "number" ? `[${p}]` : `.${String(p)}`).join("")
      .replace(/^\./, "");
    return `${path || "(top level)"}: ${i.message}`;
  });
  throw new Error(`Invalid egress config "${source}": ${problems.join("; ")}`);
}

export async function loadEgressConfig(path: string): Promise<EgressConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new Error(`Cannot read egress config "${path}": ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`Invalid egress config "${path}": not JSON: ${(err as Error).message}`);
  }
  return parseEgressConfig(data, path);
}

/**
 * Loads each route's secret from the environment and registers it for
 * redaction before anything can log it. A missing or malformed secret names
 * the variable, never the value.
 */
export function resolveRoutes(
  routes: readonly EgressRouteConfig[],
  getEnv: (name: string) => string | undefined = (n) => Deno.env.get(n),
): ResolvedRoute[] {
  return routes.map((r, i) => {
    const secret = getEnv(r.valueEnv);
    if (secret === undefined || secret === "") {
      throw new Error(
        `Route ${i} ("${r.host}"): environment variable "${r.valueEnv}" is not set or empty`,
      );
    }
    registerSecret(secret);
    if (/[\r\n\0]/.test(secret)) {
      throw new Error(
        `Route ${i} ("${r.host}"): environment variable "${r.valueEnv}" holds a line break or NUL`,
      );
    }
    return { host: r.host, header: r.header, template: r.template, secret };
  });
}
