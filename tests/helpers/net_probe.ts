/**
 * Network probes run from inside a container with perl's Socket module
 * (perl-base is in every Debian image): TCP connects and UDP sends with the
 * socket options an unprivileged process may set (SO_DONTROUTE, which skips
 * the routing table, and SO_BROADCAST), and a UDP receiver on the
 * container's own loopback as the positive control. And a host listener for
 * both protocols on every host address, which records who got through.
 */
import dgram from "node:dgram";
import { run, type RunResult } from "../../src/proc/runner.ts";

const PROBE = String.raw`
use strict; use Socket;
my ($proto, $ip, $port, $opt) = @ARGV; $opt //= "";
local $SIG{ALRM} = sub { print "timeout\n"; exit 0 }; alarm 5;
if ($proto eq "tcp") {
  socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
  setsockopt($s, SOL_SOCKET, SO_DONTROUTE, 1) or die "sockopt: $!" if $opt eq "dontroute";
  if (connect($s, pack_sockaddr_in($port, inet_aton($ip)))) { print "connected\n" }
  else { print "error: $!\n" }
} elsif ($proto eq "udp") {
  socket(my $s, PF_INET, SOCK_DGRAM, 0) or die "socket: $!";
  setsockopt($s, SOL_SOCKET, SO_DONTROUTE, 1) or die "sockopt: $!" if $opt eq "dontroute";
  setsockopt($s, SOL_SOCKET, SO_BROADCAST, 1) or die "sockopt: $!" if $opt eq "broadcast";
  my $n = send($s, "bottle-probe", 0, pack_sockaddr_in($port, inet_aton($ip)));
  print defined $n ? "sent\n" : "error: $!\n";
} elsif ($proto eq "udp-loop") {
  # Positive control: a receiver on this container's loopback gets what is sent to it.
  socket(my $r, PF_INET, SOCK_DGRAM, 0) or die; bind($r, pack_sockaddr_in(0, inet_aton("127.0.0.1"))) or die;
  my ($p) = unpack_sockaddr_in(getsockname($r));
  socket(my $s, PF_INET, SOCK_DGRAM, 0) or die;
  send($s, "bottle-probe", 0, pack_sockaddr_in($p, inet_aton("127.0.0.1"))) or die "send: $!";
  recv($r, my $buf, 64, 0); print $buf eq "bottle-probe" ? "received\n" : "lost\n";
}
`;

/** Runs one probe in `container` (as its default user); returns perl's one-line verdict. */
export async function probe(
  container: string,
  proto: "tcp" | "udp" | "udp-loop",
  ip = "127.0.0.1",
  port = 0,
  opt: "" | "dontroute" | "broadcast" = "",
): Promise<string> {
  const r: RunResult = await run(
    ["docker", "exec", container, "perl", "-e", PROBE, proto, ip, String(port), opt],
    { check: false, timeoutMs: 30_000 },
  );
  if (r.code !== 0) throw new Error(`probe in ${container} failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim();
}

export interface HostListener extends AsyncDisposable {
  readonly port: number;
  /** Peer addresses of TCP connections and UDP datagrams that reached the host. */
  readonly tcpFrom: string[];
  readonly udpFrom: string[];
}

/** A TCP and a UDP listener on every host address, on the same free port. */
export async function hostListener(): Promise<HostListener> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const tcp = Deno.listen({ hostname: "0.0.0.0", port: 0 });
    const port = (tcp.addr as Deno.NetAddr).port;
    const udp = dgram.createSocket("udp4");
    const bound = await new Promise<boolean>((resolve) => {
      udp.once("error", () => resolve(false));
      udp.bind(port, "0.0.0.0", () => resolve(true));
    });
    if (!bound) {
      tcp.close();
      udp.close();
      continue;
    }
    const tcpFrom: string[] = [];
    const udpFrom: string[] = [];
    udp.on("message", (_msg, rinfo) => udpFrom.push(rinfo.address));
    const accepting = (async () => {
      try {
        for await (const c of tcp) {
          tcpFrom.push((c.remoteAddr as Deno.NetAddr).hostname);
          c.close();
        }
      } catch { /* closed */ }
    })();
    return {
      port,
      tcpFrom,
      udpFrom,
      async [Symbol.asyncDispose]() {
        tcp.close();
        await accepting;
        await new Promise<void>((r) => udp.close(() => r()));
      },
    };
  }
  throw new Error("no free port for a TCP and UDP host listener");
}

/** The broadcast address of an IPv4 subnet ("172.18.0.0/16" -> "172.18.255.255"). */
export function broadcastOf(subnet: string): string {
  const [base, bits] = subnet.split("/") as [string, string];
  const n = base.split(".").reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
  const b = (n | (2 ** (32 - Number(bits)) - 1)) >>> 0;
  return [24, 16, 8, 0].map((s) => (b >>> s) & 255).join(".");
}
