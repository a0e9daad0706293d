/**
 * An `--internal` docker network has no route out of the host, but the host
 * itself still answers on the network's gateway address (the bridge's IP),
 * and through it on every host address: a service listening on the host's
 * 0.0.0.0 would be reachable from the agent. So once the agent container
 * runs, its routing table is cut down to its own subnet, and the gateway is
 * prohibited. This runs in a one-shot helper that joins the agent's network
 * namespace with NET_ADMIN; the agent itself has no capabilities and cannot
 * undo it.
 */
import type { DockerCli } from "./docker_cli.ts";

export async function lockAgentRoutes(
  docker: DockerCli,
  agentContainer: string,
  helperImage: string,
  gateway: string,
  labels: Record<string, string>,
): Promise<void> {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(gateway)) {
    throw new Error(`Unexpected gateway address "${gateway}"`);
  }
  await docker.run([
    "run",
    "--rm",
    "-i",
    "--network",
    `container:${agentContainer}`,
    "--cap-drop",
    "ALL",
    "--cap-add",
    "NET_ADMIN",
    ...Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]),
    "--entrypoint",
    "ip",
    helperImage,
    "-batch",
    "-",
  ], { stdin: `route del default\nroute add prohibit ${gateway}/32\n` });
}

/** The gateway (host bridge) address of a docker network. */
export async function networkGateway(docker: DockerCli, network: string): Promise<string> {
  const r = await docker.run([
    "network",
    "inspect",
    "--format",
    "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
    network,
  ]);
  const gw = r.stdout.trim().split(/\s+/).find((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a));
  if (!gw) throw new Error(`Network "${network}" has no IPv4 gateway`);
  return gw;
}
