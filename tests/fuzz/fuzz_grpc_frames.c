/* libFuzzer target for the gRPC front end's HTTP/2 and gRPC framing: the real server's pieces
 * (registry, scheduler, request service, gRPC front end) run in this process on a loopback port,
 * and each input is sent on a fresh connection after the client preface, as frames a client would
 * send (mutated: any frame type, flags, stream ids, HPACK, gRPC prefixes and messages). The client
 * then half-closes and reads until the server closes the connection: at once, or (bit 0 of the
 * input's first byte) once the server has acknowledged a PING sent after the input and no worker
 * holds a call, so the workers' answers go out on a live connection too. Every nghttp2 callback and
 * RPC runs on the server's IO thread (and ModelInfer on its workers) under ASan/UBSan; a server
 * that does not close the connection within STALL_MS of the client's EOF is reported as a crash.
 *
 * The repository is a temporary copy of the example models identity and mlp, so ModelReady,
 * metadata, statistics, health and ModelInfer reach a real model. Nothing is freed at exit: the
 * server's threads run until the process ends (its objects stay reachable from the statics). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/grpc.h"

#define STALL_MS 3000 /* a stuck server, not a slow machine: the IO thread answers in microseconds */
#define ACK_MS 20     /* the PING ACK after a well-framed input comes in well under a millisecond */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static celer_server_options opts;
static celer_metrics *metrics;
static celer_sched *sched;
static celer_registry *registry;
static celer_cache *cache;
static celer_service *service;
static celer_grpc *grpc;
static struct sockaddr_in server_addr;

static void die(const char *what) {
    fprintf(stderr, "fuzz_grpc_frames: %s: %s\n", what, errno ? strerror(errno) : celer_error_message());
    abort();
}

/* Copies examples/repository/<model> (config.pbtxt if any, version 1's model.onnx) under `repo`. */
static void copy_model(const char *repo, const char *model) {
    static const char *const files[] = {"config.pbtxt", "1/model.onnx"};
    char src[1024], dst[1024];
    snprintf(dst, sizeof dst, "%s/%s", repo, model);
    mkdir(dst, 0755);
    snprintf(dst, sizeof dst, "%s/%s/1", repo, model);
    mkdir(dst, 0755);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(src, sizeof src, "%s/%s/%s", CELER_EXAMPLE_REPOSITORY, model, files[i]);
        snprintf(dst, sizeof dst, "%s/%s/%s", repo, model, files[i]);
        FILE *in = fopen(src, "rb");
        if (!in) continue; /* identity has no config */
        FILE *out = fopen(dst, "wb");
        if (!out) die(dst);
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            if (fwrite(buf, 1, n, out) != n) die(dst);
        fclose(in);
        if (fclose(out)) die(dst);
    }
}

static char repo[] = "/tmp/celer-fuzz-grpc-repo.XXXXXX";

/* At exit: the copied models go (the server still runs, but has read them). */
static void remove_repo(void) {
    static const char *const paths[] = {"identity/1/model.onnx", "identity/1", "identity", "mlp/config.pbtxt",
                                        "mlp/1/model.onnx", "mlp/1", "mlp", ""};
    char path[1024];
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", repo, paths[i]);
        if (unlink(path)) rmdir(path);
    }
}

/* A loopback port free now (the server binds it a moment later). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &len)) die("port");
    close(fd);
    return ntohs(a.sin_port);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    signal(SIGPIPE, SIG_IGN); /* the server writes to connections the client already closed */
    if (!mkdtemp(repo)) die("mkdtemp");
    atexit(remove_repo);
    copy_model(repo, "identity");
    copy_model(repo, "mlp");
    char port[16];
    snprintf(port, sizeof port, "%d", free_port());
    char *args[] = {"--model-repository", repo, "--grpc-address", "127.0.0.1", "--grpc-port", port,
                    "--workers", "1", "--quiet", "--grpc-max-message-bytes", "1048576"};
    if (celer_server_parse_args((int)(sizeof args / sizeof args[0]), args, &opts) ||
        celer_metrics_init(&metrics) || celer_cache_init(1 << 20, &cache) || celer_sched_init(1, &sched) ||
        celer_registry_init(&opts, sched, metrics, &registry))
        die("server set-up");
    celer_registry_load_all(registry);
    if (!celer_registry_ready(registry)) die("the example models did not load");
    if (celer_service_init(&opts, registry, metrics, cache, NULL, &service) ||
        celer_grpc_start(&opts, service, metrics, NULL, &grpc))
        die("gRPC front end");
    server_addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)opts.grpc_port),
                                       .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    fprintf(stderr, "fuzz_grpc_frames: serving %s on grpc://127.0.0.1:%d\n", repo, opts.grpc_port);
    return 0;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The client's side of one connection: what is left to send, and the server's frames read so far
 * (only their 9-byte headers are parsed, to find the ACK of our closing PING). */
typedef struct client {
    int fd;
    const uint8_t *parts[3];
    size_t lens[3], part, off;
    bool shut, eof, ping_acked;
    uint8_t hd[9];
    size_t hd_got, skip;
    uint8_t ping[8];
    size_t ping_got; /* of the current PING ACK's payload */
} client;

static const uint8_t ping_payload[8] = {'c', 'e', 'l', 'e', 'r', 'f', 'z', '!'};

static void parse_frames(client *c, const uint8_t *p, size_t n) {
    while (n > 0) {
        if (c->hd_got < 9) {
            size_t k = CELER_MIN(n, 9 - c->hd_got);
            memcpy(c->hd + c->hd_got, p, k);
            c->hd_got += k, p += k, n -= k;
            if (c->hd_got < 9) return;
            c->skip = (size_t)c->hd[0] << 16 | (size_t)c->hd[1] << 8 | c->hd[2];
            c->ping_got = 0;
            if (c->skip == 0) c->hd_got = 0;
            continue;
        }
        size_t k = CELER_MIN(n, c->skip);
        bool is_ack = c->hd[3] == 6 /* PING */ && (c->hd[4] & 1) && c->skip + c->ping_got == 8;
        if (is_ack) {
            memcpy(c->ping + c->ping_got, p, k);
            c->ping_got += k;
            if (c->ping_got == 8 && !memcmp(c->ping, ping_payload, 8)) c->ping_acked = true;
        }
        c->skip -= k, p += k, n -= k;
        if (c->skip == 0) c->hd_got = 0;
    }
}

/* One poll turn, at most `wait_ms`: sends what the socket takes, reads (and parses) what came.
 * Returns 1 on progress, 0 when nothing happened within the wait, -1 when a signal cut the wait
 * short (libFuzzer's SIGALRM for -timeout comes every few seconds). */
static int client_turn(client *c, int wait_ms) {
    bool sending = c->part < 3;
    struct pollfd p = {.fd = c->fd, .events = POLLIN | (sending ? POLLOUT : 0)};
    int n = poll(&p, 1, wait_ms);
    if (n < 0 && errno == EINTR) return -1;
    if (n < 0) die("poll");
    if (n == 0) return 0;
    if (sending && (p.revents & POLLOUT)) {
        ssize_t w = send(c->fd, c->parts[c->part] + c->off, c->lens[c->part] - c->off, MSG_NOSIGNAL);
        if (w > 0) c->off += (size_t)w;
        else if (w < 0 && errno == ECONNREFUSED) die("connect"); /* the server is gone */
        else if (w < 0 && errno != EAGAIN && errno != EINTR) c->part = 3; /* the server closed: read the rest */
        while (c->part < 3 && c->off == c->lens[c->part]) c->part++, c->off = 0;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        uint8_t buf[65536];
        ssize_t r = recv(c->fd, buf, sizeof buf, 0);
        if (r > 0) parse_frames(c, buf, (size_t)r);
        else if (r == 0 || (errno != EAGAIN && errno != EINTR)) c->eof = true; /* EOF or reset: closed */
    }
    return 1;
}

/* Turns until `done` or EOF; a silence of `stall_ms` fails (abort: a stuck server) when `fatal`,
 * else just ends the wait. */
static void client_until(client *c, bool (*done)(const client *), int stall_ms, bool fatal, const char *what) {
    int64_t deadline = now_ms() + stall_ms;
    while (!c->eof && !done(c)) {
        int64_t left = deadline - now_ms();
        int turn = left > 0 ? client_turn(c, (int)left) : 0;
        if (turn > 0) deadline = now_ms() + stall_ms;
        if (turn != 0) continue;
        if (!fatal) return;
        fprintf(stderr, "fuzz_grpc_frames: the server did not %s within %d ms\n", what, stall_ms);
        abort();
    }
}

static bool all_sent(const client *c) { return c->part == 3; }
static bool acked(const client *c) { return c->ping_acked; }
static bool never(const client *c) { (void)c; return false; }

/* Byte 0, bit 0: read the answers before the EOF (workers' answers are sent on a live connection);
 * clear: half-close at once (the connection closes while workers may hold its calls). The rest
 * follows the client preface as frames. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    /* a PING after the input: its ACK means the server has run every frame before it */
    static const uint8_t ping[17] = {0, 0, 8, 6, 0, 0, 0, 0, 0, 'c', 'e', 'l', 'e', 'r', 'f', 'z', '!'};
    if (size < 1) return 0;
    bool answers = data[0] & 1;
    client c = {.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0),
                .parts = {(const uint8_t *)preface, data + 1, ping},
                .lens = {sizeof preface - 1, size - 1, answers ? sizeof ping : 0}};
    /* non-blocking from the start: a signal may interrupt connect, which then goes on by itself */
    if (c.fd < 0 || fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK) ||
        (connect(c.fd, (struct sockaddr *)&server_addr, sizeof server_addr) && errno != EINPROGRESS && errno != EINTR))
        die("connect");
    client_until(&c, all_sent, STALL_MS, true, "take the input");
    if (answers) {
        /* a framing the input left open swallows the PING: then no answers are waited for */
        client_until(&c, acked, ACK_MS, false, "");
        int64_t give_up = now_ms() + STALL_MS;
        while (c.ping_acked && !c.eof && celer_grpc_suspended(grpc) > 0 && now_ms() < give_up) client_turn(&c, 1);
    }
    shutdown(c.fd, SHUT_WR);
    client_until(&c, never, STALL_MS, true, "close the connection after the client's EOF");
    close(c.fd);
    return 0;
}
