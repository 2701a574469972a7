/*
 * tcpblast: one TCP stream of zeros, its throughput measured, for benches/network.sh.
 *
 * Hand-written because the tools at hand measure themselves, not the network: busybox nc copies
 * through small buffers and gives 171 MB/s on this machine's loopback, where the kernel moves
 * several GB/s. Built static (the busybox containers have no libc) by benches/network.sh.
 *
 *   tcpblast server PORT           accept one connection, read to EOF, close
 *   tcpblast client IP PORT MIB    send MIB MiB in 256 KiB writes, half-close, wait for the
 *                                  server's close; print "MB/s <rate>" (10^6 bytes per second)
 *   tcpblast lo-up                 set lo up in the current network namespace
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (256 * 1024)
static char buf[BUF];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int die(const char *what) {
    fprintf(stderr, "tcpblast: %s: %s\n", what, strerror(errno));
    return 1;
}

static int server(int port) {
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0) return die("bind");
    if (listen(l, 1) < 0) return die("listen");
    int c = accept(l, NULL, NULL);
    if (c < 0) return die("accept");
    ssize_t n;
    while ((n = read(c, buf, BUF)) > 0) {
    }
    close(c);
    return n < 0 ? die("read") : 0;
}

static int client(const char *ip, int port, long mib) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
        fprintf(stderr, "tcpblast: not an IPv4 address: %s\n", ip);
        return 1;
    }
    int s = -1;
    /* The server may still be starting: retry for 10 s. */
    for (int i = 0; i < 1000; i++) {
        s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) break;
        close(s);
        s = -1;
        usleep(10000);
    }
    if (s < 0) return die("connect");
    long long total = mib * 1024LL * 1024LL, sent = 0;
    double start = now();
    while (sent < total) {
        ssize_t n = write(s, buf, total - sent < BUF ? total - sent : BUF);
        if (n < 0) return die("write");
        sent += n;
    }
    shutdown(s, SHUT_WR);
    /* The server closes once it has read everything: then all bytes arrived. */
    while (read(s, buf, BUF) > 0) {
    }
    double seconds = now() - start;
    printf("MB/s %.1f\n", sent / seconds / 1e6);
    return 0;
}

static int lo_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq r;
    memset(&r, 0, sizeof r);
    strcpy(r.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &r) < 0) return die("SIOCGIFFLAGS");
    r.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &r) < 0) return die("SIOCSIFFLAGS");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "server")) return server(atoi(argv[2]));
    if (argc == 5 && !strcmp(argv[1], "client")) return client(argv[2], atoi(argv[3]), atol(argv[4]));
    if (argc == 2 && !strcmp(argv[1], "lo-up")) return lo_up();
    fprintf(stderr, "usage: tcpblast server PORT | client IP PORT MIB | lo-up\n");
    return 2;
}
