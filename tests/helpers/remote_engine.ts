/**
 * TEST-ONLY: a second Docker engine that does not share this host's
 * filesystem: dockerd from Debian's docker.io in a container on its own test
 * network, reached over TCP (no TLS: it is only reachable on that bridge).
 * Its /var/lib/docker is a volume of the outer engine, so nothing it stores
 * is a path on this host. Images are moved into it with `docker save` and
 * `docker load`, as a user would to a registry-less engine.
 *
 * The container gets every capability this host allows (not `--privileged`:
 * this host's bounding set lacks CAP_SYS_RESOURCE, so privileged containers
 * cannot start here), no seccomp or AppArmor profile, and the host's cgroup
 * tree, where its containers go under their own parent.
 */
import { run } from "../../src/proc/runner.ts";
import { testImage } from "./test_image.ts";

const DOCKERFILE = `FROM debian:bookworm-slim
RUN apt-get update && \\
    apt-get install -y --no-install-recommends docker.io iptables tini ca-certificates && \\
    rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["dockerd", "--host", "tcp://0.0.0.0:2375", "--tls=false"]
`;

export interface RemoteEngine extends AsyncDisposable {
  /** DOCKER_HOST for the inner engine. */
  host: string;
  /** Runs the docker CLI against the inner engine. */
  docker(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Restarts the inner dockerd (its containers stop with it) and waits until it answers. */
  restart(): Promise<void>;
}

export async function startRemoteEngine(images: string[]): Promise<RemoteEngine> {
  const image = await testImage("dockerd", DOCKERFILE);
  const id = crypto.randomUUID().slice(0, 8);
  const net = `bottle-test-remote-${id}`;
  const name = `bottle-test-remote-engine-${id}`;
  await run(["docker", "network", "create", net]);
  const stack = new AsyncDisposableStack();
  stack.defer(async () => {
    await run(["docker", "rm", "-f", "-v", name], { check: false });
    await run(["docker", "network", "rm", net], { check: false });
  });
  try {
    await run([
      "docker",
      "run",
      "-d",
      "--cap-add",
      "ALL",
      "--cap-drop",
      "SYS_RESOURCE",
      "--security-opt",
      "seccomp=unconfined",
      "--security-opt",
      "apparmor=unconfined",
      "--security-opt",
      "systempaths=unconfined",
      "--cgroupns",
      "host",
      "--mount",
      "type=bind,source=/sys/fs/cgroup,target=/sys/fs/cgroup",
      "--name",
      name,
      "--network",
      net,
      "--mount",
      "type=volume,target=/var/lib/docker",
      image,
      `--cgroup-parent=/${name}`,
    ]);
    const ip = (await run([
      "docker",
      "inspect",
      "--format",
      `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`,
      name,
    ])).stdout.trim();
    const host = `tcp://${ip}:2375`;
    const docker = async (args: string[]) => {
      const r = await run(["docker", ...args], { env: { DOCKER_HOST: host }, check: false });
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    };
    const waitUp = async () => {
      let up = false;
      for (let i = 0; i < 120 && !up; i++) {
        up = (await docker(["version"])).code === 0;
        if (!up) await new Promise((r) => setTimeout(r, 500));
      }
      if (!up) {
        const logs = await run(["docker", "logs", name], { check: false });
        throw new Error(`the inner dockerd did not come up: ${logs.stderr.slice(-2000)}`);
      }
    };
    await waitUp();
    const restart = async () => {
      await run(["docker", "restart", "--time", "2", name]);
      await waitUp();
    };
    // docker save | docker load, through a file (the CLI takes no pipe between engines).
    const archive = await Deno.makeTempFile({ prefix: "bottle-test-images-", suffix: ".tar" });
    try {
      await run(["docker", "save", "--output", archive, ...images], { timeoutMs: 600_000 });
      const load = await run(["docker", "load", "--input", archive], {
        env: { DOCKER_HOST: host },
        timeoutMs: 600_000,
      });
      if (load.code !== 0) throw new Error(load.stderr);
    } finally {
      await Deno.remove(archive).catch(() => {});
    }
    const moved = stack.move();
    return { host, docker, restart, [Symbol.asyncDispose]: () => moved.disposeAsync() };
  } catch (err) {
    await stack.disposeAsync();
    throw err;
  }
}
