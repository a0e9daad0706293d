/**
 * `bottle plan`'s default output: what a start would make, in a few lines a
 * person reads (the full plan is `--full` or `--json`). Pure: from the plan.
 */
import type { Plan } from "../plan/plan_types.ts";

export function planSummary(plan: Plan): string {
  const lines: string[] = [];
  const add = (label: string, value: string) => lines.push(`${`${label}:`.padEnd(13)}${value}`);
  const b = plan.bottle;
  add("bottle", `${b.name} (agent ${b.agent}, from ${b.origin}, ${b.backend})`);
  const image = plan.images.agent;
  add(
    "image",
    image.source === "builtin"
      ? `built-in (${image.repository})`
      : `${image.dockerfile ?? image.repository}`,
  );
  add("runs", plan.agent.program.join(" "));
  add("as", `${plan.agent.user} in ${plan.agent.workdir}`);
  add("workspace", workspaceLine(plan));
  add("reaches", plan.bundle.allowlist.length > 0 ? plan.bundle.allowlist.join(", ") : "nothing");
  add(
    "credentials",
    plan.bundle.routes.length > 0
      ? plan.bundle.routes.map((r) => `${r.host} (${r.header})`).join(", ")
      : "none",
  );
  const gate = plan.bundle.gitGate?.upstreams ?? [];
  add(
    "git gate",
    gate.length > 0
      ? gate.map((u) => u.kind === "host" ? "this repository" : u.url).join(", ")
      : "none",
  );
  if (plan.bundle.supervise) {
    add("supervise", `on, requests wait ${plan.bundle.supervise.timeoutSeconds} s`);
  }
  if (plan.agent.keptHome) {
    add("home", plan.agent.keptHome.restore ? `kept (${plan.agent.keptHome.hostFile})` : "fresh");
  }
  const net = plan.vm?.network;
  if (net) {
    add(
      "vm network",
      net.mode === "sockets"
        ? `none: the bundle's ports come in as sockets (${net.reason})`
        : `the bundle's address alone (${net.reason})`,
    );
  }
  add("daemons", plan.bundle.daemons.join(", "));
  lines.push("", "The whole plan: bottle plan --full (YAML) or --json.");
  return lines.join("\n");
}

function workspaceLine(plan: Plan): string {
  const gate = plan.bundle.gitGate?.upstreams.find((u) => u.kind === "host");
  if (gate?.kind === "host") {
    return `this repository, cloned through the git gate (pushes land as ${
      gate.landingPrefix.replace(/^refs\/heads\//, "")
    }*)`;
  }
  const mount = plan.agent.container?.mounts.find((m) => m.target === plan.agent.workdir);
  if (mount) return `${mount.source}, mounted read-write`;
  return "empty";
}
