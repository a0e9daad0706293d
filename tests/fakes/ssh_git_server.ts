/**
 * TEST-ONLY: a real OpenSSH server holding bare git repositories, standing
 * in for a git host a declared upstream points at. It runs in a container
 * on the host's network, listening on one address (the docker0 bridge's,
 * where a bundle's `host-gateway` points) and a free port; the `git` user
 * logs in with one client key only, into git-shell. Its host key is read
 * out for the test's known_hosts, so the bundle's ssh must verify it.
 */
import { run } from "../../src/proc/runner.ts";
import { testImage } from "../helpers/test_image.ts";

const DOCKERFILE = `FROM debian:bookworm-slim
RUN apt-get update && \\
    apt-get install -y --no-install-recommends openssh-server git && \\
    rm -rf /var/lib/apt/lists/* && \\
    useradd --create-home --shell /usr/bin/git-shell git && \\
    usermod --password '*' git && \\
    mkdir -p /run/sshd /srv && chown git /srv
`;

/** Host keys made fresh, then sshd in the foreground: key logins for `git` only. */
const START = `set -eu
ssh-keygen -A -q
exec /usr/sbin/sshd -D -e -p "$PORT" -o ListenAddress="$ADDR" \\
  -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no \\
  -o PermitRootLogin=no -o AllowUsers=git
`;

export interface SshGitServer extends AsyncDisposable {
  readonly address: string;
  readonly port: number;
  /** The client's private key (OpenSSH format), the only one the server accepts. */
  readonly clientKey: string;
  /** The server's ed25519 host key line (`ssh-ed25519 AAAA...`). */
  readonly hostKey: string;
  /** Runs a shell script in the server as the `git` user (its repositories are /srv/*.git). */
  sh(script: string): Promise<string>;
}

function freePort(hostname: string): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export async function startSshGitServer(address: string): Promise<SshGitServer> {
  const tag = await testImage("sshd", DOCKERFILE);
  const port = freePort(address);
  const name = `bottle-test-sshd-${crypto.randomUUID().slice(0, 8)}`;
  await run([
    "docker",
    "run",
    "-d",
    "--name",
    name,
    "--network",
    "host",
    "-e",
    `PORT=${port}`,
    "-e",
    `ADDR=${address}`,
    tag,
    "sh",
    "-c",
    START,
  ]);
  const exec = async (script: string, user = "git") =>
    (await run(["docker", "exec", "-u", user, name, "sh", "-c", script], {
      timeoutMs: 120_000,
    })).stdout;
  try {
    for (let i = 0;; i++) {
      try {
        (await Deno.connect({ hostname: address, port })).close();
        break;
      } catch (err) {
        if (i >= 100) {
          const logs = await run(["docker", "logs", name], { check: false });
          throw new Error(`sshd did not listen on ${address}:${port}: ${logs.stderr}`, {
            cause: err,
          });
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await exec(
      "mkdir -p -m 700 ~/.ssh && ssh-keygen -q -t ed25519 -N '' -C bottle-test -f ~/client && mv ~/client.pub ~/.ssh/authorized_keys",
    );
    const clientKey = await exec("cat ~/client && rm ~/client");
    const hostKey = (await exec("cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub")).trim();
    return {
      address,
      port,
      clientKey,
      hostKey,
      sh: (script) => exec(script),
      async [Symbol.asyncDispose]() {
        await run(["docker", "rm", "-f", name], { check: false });
      },
    };
  } catch (err) {
    await run(["docker", "rm", "-f", name], { check: false });
    throw err;
  }
}
