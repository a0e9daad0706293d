/*
 * bottle-forward: the agent's one way out of a docker bottle.
 *
 * The agent container has no network at all (`--network none`: loopback
 * only), so nothing it does (raw sockets need capabilities it lacks;
 * SO_DONTROUTE, broadcasts and DNS need an interface it does not have) can
 * reach the host, the LAN or another bottle. The bundle serves its
 * agent-facing daemons on Unix sockets in a volume the agent mounts
 * read-only; this program listens on 127.0.0.1:PORT for every PORT=SOCKET
 * argument and relays each connection to SOCKET, so HTTP(S)_PROXY and the
 * other URLs the agent is given stay plain TCP URLs.
 *
 * In a smolmachines VM (no network device either) SOCKET is a host socket
 * smolvm mounts into the guest; there `--daemon` detaches once every
 * listener is bound, so whoever started it knows the ports are ready.
 *
 * Static and dependency-free, so it runs in any agent image. One process per
 * connection (fork), relaying both directions with half-close preserved (a
 * CONNECT tunnel needs it). It never retries and never buffers more than one
 * read per direction.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_LISTENERS 16
#define BUF_SIZE (64 * 1024)

struct listener {
  int fd;
  int port;
  const char *socket_path;
};

static void die(const char *what) {
  fprintf(stderr, "bottle-forward: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int listen_loopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(fd, 512) < 0) die("listen");
  return fd;
}

static int connect_unix(const char *path) {
  struct sockaddr_un addr = {0};
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

/* Writes all of buf; returns 0, or -1 when the peer is gone. */
static int write_all(int fd, const char *buf, ssize_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, (size_t)n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += w;
    n -= w;
  }
  return 0;
}

/* Relays a <-> b until both directions have ended, then exits. */
static void relay(int a, int b) {
  static char buf[BUF_SIZE];
  int open_ab = 1, open_ba = 1; /* a->b and b->a still flowing */
  while (open_ab || open_ba) {
    struct pollfd p[2] = {{a, open_ab ? POLLIN : 0, 0}, {b, open_ba ? POLLIN : 0, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; i++) {
      int from = i == 0 ? a : b, to = i == 0 ? b : a;
      int *open = i == 0 ? &open_ab : &open_ba;
      if (!*open || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(from, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        /* End of this direction: pass the half-close on. A reset ends both. */
        *open = 0;
        shutdown(to, SHUT_WR);
        if (n < 0) open_ab = open_ba = 0;
        continue;
      }
      if (write_all(to, buf, n) < 0) open_ab = open_ba = 0;
    }
  }
  close(a);
  close(b);
  _exit(0);
}

static void serve(struct listener *l) {
  int client = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
  if (client < 0) return;
  pid_t pid = fork();
  if (pid < 0) {
    close(client);
    return;
  }
  if (pid > 0) {
    close(client);
    return;
  }
  int one = 1;
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int upstream = connect_unix(l->socket_path);
  if (upstream < 0) {
    fprintf(stderr, "bottle-forward: 127.0.0.1:%d: cannot reach %s: %s\n", l->port,
            l->socket_path, strerror(errno));
    close(client);
    _exit(1);
  }
  relay(client, upstream);
}

/* Detaches from the caller once the listeners are bound: the caller's exit is the ready signal. */
static void daemonize(void) {
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid > 0) _exit(0);
  if (setsid() < 0) die("setsid");
}

int main(int argc, char **argv) {
  int daemon_mode = argc > 1 && strcmp(argv[1], "--daemon") == 0;
  if (daemon_mode) {
    argv++;
    argc--;
  }
  if (argc < 2 || argc - 1 > MAX_LISTENERS) {
    fprintf(stderr, "usage: bottle-forward [--daemon] PORT=SOCKET_PATH... (at most %d)\n",
            MAX_LISTENERS);
    return 2;
  }
  /* Children are reaped by the kernel; a vanished peer is an error return, not a signal. */
  signal(SIGCHLD, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  struct listener ls[MAX_LISTENERS];
  struct pollfd ps[MAX_LISTENERS];
  int n = argc - 1;
  for (int i = 0; i < n; i++) {
    char *arg = argv[i + 1];
    char *eq = strchr(arg, '=');
    char *end = NULL;
    long port = eq ? strtol(arg, &end, 10) : 0;
    if (!eq || end != eq || port < 1 || port > 65535 || eq[1] != '/') {
      fprintf(stderr, "bottle-forward: bad argument \"%s\": expected PORT=/path/to.sock\n", arg);
      return 2;
    }
    ls[i].port = (int)port;
    ls[i].socket_path = eq + 1;
    ls[i].fd = listen_loopback(ls[i].port);
    ps[i].fd = ls[i].fd;
    ps[i].events = POLLIN;
    fprintf(stderr, "bottle-forward: 127.0.0.1:%d -> %s\n", ls[i].port, ls[i].socket_path);
  }
  if (daemon_mode) daemonize();
  for (;;) {
    if (poll(ps, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    for (int i = 0; i < n; i++) {
      if (ps[i].revents & POLLIN) serve(&ls[i]);
    }
  }
}
