/**
 * The `deno run` permissions the egress daemon runs with: network (listen,
 * dial the upstream proxy), read (config, CA files, system CA bundle),
 * write to the audit log and the agent-facing sockets' dir only, and env
 * (route secrets). Its own module so init can name them without loading egress.
 */
export function egressPermissions(auditLog: string, socketsDir: string): string[] {
  return [
    "--no-prompt",
    "--allow-net",
    "--allow-read",
    `--allow-write=${auditLog},${socketsDir}`,
    "--allow-env",
  ];
}
