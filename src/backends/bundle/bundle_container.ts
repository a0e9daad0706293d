/**
 * The bundle container, shared by both runtimes: run as the plan says
 * (`bundle.container`), attached, its start input (config files and
 * secrets) sent on stdin and its output read until its init says ready. Nothing goes through the host's filesystem (the engine may be
 * another machine), and the secrets are in no container config. Afterwards
 * it is read back through the engine: its address and its audit log, which
 * is saved on the host before the container goes.
 */
import { dirname } from "node:path";
import { type DockerCli, DockerCopyError } from "../../engine/docker_cli.ts";
import type { Plan } from "../../plan/plan_types.ts";
import type { BundleFiles } from "../../bundle/bundle_files.ts";
import { AUDIT_LOG_IN_BUNDLE, READY_LINE } from "../../bundle/init/bundle_manifest.ts";
import { encodeStartInput } from "../../bundle/init/start_input.ts";
import { toContainerSpec } from "../container_spec.ts";
import { readTarFiles } from "../../archive/tar.ts";
import { makePrivateDir, writePrivateFile } from "../../state/private_files.ts";
import { abortable } from "../../proc/abortable.ts";
import { registerSecret } from "../../proc/secrets.ts";

const READY_TIMEOUT_MS = 90_000;

/**
 * Runs the bundle (created and started in one attached call) and waits for
 * its ready line. Its start input goes on its stdin as soon as its files
 * are made: the container boots meanwhile, and its init waits for it. A
 * bundle that exits instead is reported with the tail of what it said.
 */
export async function startBundle(
  docker: DockerCli,
  plan: Plan,
  p: {
    image: string;
    files: () => Promise<BundleFiles>;
    secretEnv: Record<string, string>;
    signal: AbortSignal;
  },
): Promise<void> {
  const c = plan.bundle.container;
  const wanted = c.startInput?.secrets ?? [];
  const secrets = Object.fromEntries(wanted.map((k) => {
    const v = p.secretEnv[k];
    if (v === undefined) throw new Error(`No value for ${k} of "${c.name}"`);
    registerSecret(v);
    return [k, v];
  }));
  const input = new TransformStream<Uint8Array, Uint8Array>();
  const child = docker.runAttached(toContainerSpec(c, p.image, {}), input.readable);
  const writer = input.writable.getWriter();
  const sent = p.files().then((f) => writer.write(encodeStartInput(f.files, secrets)));
  sent.catch(() => child.kill("SIGKILL")); // nothing to send: the wait below ends at once
  const seen: string[] = [];
  const scan = async (stream: ReadableStream<Uint8Array>): Promise<boolean> => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const l of lines) {
        seen.push(l);
        if (l.trim() === READY_LINE) return true;
      }
    }
    return false;
  };
  const timeout = AbortSignal.timeout(READY_TIMEOUT_MS);
  const tail = () => seen.slice(-15).join("\n");
  try {
    await abortable(sent, p.signal);
    // Ready as soon as either stream shows the line; not ready once both ended without it.
    const scans = [scan(child.process.stdout), scan(child.process.stderr)];
    const ready = await abortable(
      Promise.race([
        ...scans.map((s) => s.then((found) => found || new Promise<never>(() => {}))),
        Promise.all(scans).then((found) => found.some(Boolean)),
      ]),
      AbortSignal.any([p.signal, timeout]),
    );
    if (!ready) {
      const status = await child.status;
      throw new Error(
        `The bundle "${c.name}" exited before it was ready (code ${status.code}): ${tail()}`,
      );
    }
  } catch (err) {
    if (timeout.aborted && !p.signal.aborted) {
      throw new Error(
        `The bundle "${c.name}" was not ready after ${READY_TIMEOUT_MS / 1000} s: ${tail()}`,
      );
    }
    throw err;
  } finally {
    // SIGKILL: the one signal the attached client cannot pass on to the bundle.
    child.kill("SIGKILL");
    await child.status;
    await writer.abort().catch(() => {});
  }
}

/** The bundle's address on its network (what a VM's egress policy allows). */
export function bundleAddress(docker: DockerCli, plan: Plan): Promise<string> {
  return docker.containerAddress(plan.bundle.container.name, plan.bundle.container.network);
}

/** Where the bundle's published ports are on the host: its port -> the host's. */
export async function publishedPorts(
  docker: DockerCli,
  plan: Plan,
): Promise<Record<number, number>> {
  const c = plan.bundle.container;
  const found = await Promise.all(
    (c.publish ?? []).map(async (p) =>
      [p.port, await docker.publishedPort(c.name, p.port, p.hostIp)] as const
    ),
  );
  return Object.fromEntries(found);
}

/** The audit log as it is in the bundle now (empty if nothing was logged yet). */
export async function readAuditLog(docker: DockerCli, container: string): Promise<Uint8Array> {
  try {
    const files = readTarFiles(await docker.copyOut(container, AUDIT_LOG_IN_BUNDLE));
    return [...files.values()][0] ?? new Uint8Array();
  } catch (err) {
    if (err instanceof DockerCopyError && /could not find the file/i.test(err.stderr)) {
      return new Uint8Array();
    }
    throw err;
  }
}

/**
 * Copies the audit log out to `dest` before the bundle is removed, so that a
 * session can be reviewed after `stop`. A bundle that is already gone has
 * nothing to save.
 */
export async function saveAuditLog(
  docker: DockerCli,
  container: string,
  dest: string,
): Promise<void> {
  let log: Uint8Array;
  try {
    log = await readAuditLog(docker, container);
  } catch (err) {
    if (err instanceof DockerCopyError) return;
    throw err;
  }
  if (log.length === 0) return;
  await makePrivateDir(dirname(dest));
  await writePrivateFile(dest, log);
}
