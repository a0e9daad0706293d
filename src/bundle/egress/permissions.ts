/**
 * The `deno run` permissions the egress daemon runs with, and nothing more:
 * network only to listen on its port and to dial pipelock on loopback (every
 * outside connection is a CONNECT through pipelock), read only its config,
 * the CA files and the system trust, write only its audit log and its
 * socket's dir, and no environment at all (its secrets come on stdin). Its
 * own module, so init can name them without loading egress.
 */
export interface EgressGrants {
  auditLog: string;
  /** Where egress makes its agent-facing socket. */
  socketsDir: string;
  /** Ports it listens on (any address) and the pipelock addresses it dials. */
  listenPort: number;
  upstreams: string[];
  /** Config and CA dirs it reads, besides the system trust. */
  readDirs: string[];
}

const SYSTEM_TRUST = ["/etc/ssl", "/etc/pki", "/usr/share/ca-certificates"];

export function egressPermissions(g: EgressGrants): string[] {
  return [
    "--no-prompt",
    `--allow-net=0.0.0.0:${g.listenPort},127.0.0.1:${g.listenPort},${
      g.upstreams.join(",")
    },unix:${g.socketsDir}/egress.sock`,
    `--allow-read=${[...g.readDirs, ...SYSTEM_TRUST, g.socketsDir].join(",")}`,
    `--allow-write=${g.auditLog},${g.socketsDir}`,
  ];
}
