/* fixed_answer: an HTTP/1.1 server that does no work, for the benchmarks' ceiling. It reads each
 * request (headers, then Content-Length bytes of body) and answers every one with the same 200
 * and a fixed body, on keep-alive connections: what is left is the kernel's and the client's cost,
 * which no server avoids. Not part of celer; built and started by bench/cache_bench.sh.
 *
 *   fixed_answer PORT THREADS ANSWER_FILE      (listens on 127.0.0.1:PORT)
 *
 * Each thread has its own listening socket (SO_REUSEPORT) and epoll loop, as nginx's workers do.
 * A request larger than a connection's buffer, or without a parsable Content-Length when it has
 * a body, closes the connection. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONN_BUF (256 * 1024)

typedef struct conn {
    int fd;
    size_t len;
    char buf[CONN_BUF];
} conn;

static char *response;
static size_t response_len;
static int port;

/* Bytes of the first complete request in c->buf, 0 if incomplete, -1 if it cannot fit. */
static long complete_request(const conn *c) {
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) return c->len == CONN_BUF ? -1 : 0;
    size_t head = (size_t)(end + 4 - c->buf), body = 0;
    for (const char *p = c->buf; p < end; p++) {
        if ((p == c->buf || p[-1] == '\n') && !strncasecmp(p, "content-length:", 15)) {
            body = strtoul(p + 15, NULL, 10);
            break;
        }
    }
    if (head + body > CONN_BUF) return -1;
    return c->len >= head + body ? (long)(head + body) : 0;
}

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) return -1; /* a full socket buffer: the client stopped reading; drop it */
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads what arrived and answers every complete request; 0 when the connection is done. */
static int serve(conn *c) {
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->len, CONN_BUF - c->len, 0);
        if (r == 0) return 0;
        if (r < 0) return errno == EAGAIN || errno == EINTR; /* EAGAIN: wait for more */
        c->len += (size_t)r;
        long n;
        while ((n = complete_request(c)) > 0) {
            if (send_all(c->fd, response, response_len)) return 0;
            memmove(c->buf, c->buf + n, c->len - (size_t)n);
            c->len -= (size_t)n;
        }
        if (n < 0) return 0;
    }
}

static void *loop(void *arg) {
    (void)arg;
    int one = 1, ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) {
        perror("fixed_answer: listen");
        exit(1);
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event ready[256];
    for (;;) {
        int n = epoll_wait(ep, ready, 256, -1);
        for (int i = 0; i < n; i++) {
            conn *c = ready[i].data.ptr;
            if (c) {
                if (!serve(c)) {
                    close(c->fd);
                    free(c);
                }
                continue;
            }
            int fd;
            while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                conn *nc = malloc(sizeof *nc);
                if (!nc) {
                    close(fd);
                    continue;
                }
                nc->fd = fd;
                nc->len = 0;
                struct epoll_event e = {.events = EPOLLIN, .data.ptr = nc};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: fixed_answer PORT THREADS ANSWER_FILE\n");
        return 2;
    }
    port = atoi(argv[1]);
    int threads = atoi(argv[2]);
    FILE *f = fopen(argv[3], "rb");
    if (!f || threads < 1 || threads > 64) {
        fprintf(stderr, "fixed_answer: bad thread count or unreadable %s\n", argv[3]);
        return 2;
    }
    static char body[1 << 20];
    size_t body_len = fread(body, 1, sizeof body, f);
    fclose(f);
    response = malloc(body_len + 128);
    if (!response) return 1;
    int head = snprintf(response, 128, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                        body_len);
    memcpy(response + head, body, body_len);
    response_len = (size_t)head + body_len;
    pthread_t t[64];
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, loop, NULL);
    pthread_join(t[0], NULL);
    return 0;
}
