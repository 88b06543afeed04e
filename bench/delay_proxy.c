/* A TCP proxy that holds every chunk for a fixed delay in each direction: the C twin of
 * bench/delay_proxy.py (same command line, same "listening HOST:PORT" line), used by the db-latency
 * scenario when a C compiler is at hand. A real network delays packets without costing the hosts any
 * CPU; a Python proxy on this 2-core machine takes CPU from the very modes being compared (those
 * bound by CPU), so it biases the 1 ms figures. This one costs a few percent of a core.
 *
 * One thread, epoll. The delay is the same for every chunk, so chunks fall due in the order they
 * arrived: one global FIFO of release events, one timerfd (nanosecond timer) armed for its head.
 * Order is kept per direction; a direction whose peer cannot take more waits for EPOLLOUT.
 *
 *   delay_proxy --listen 127.0.0.1:0 (--target-unix PATH | --target HOST:PORT) --delay-ms 0.5
 * prints "listening 127.0.0.1:PORT" once ready and runs until SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_MAX 65536
#define EARLY_NS 20000 /* release a chunk this close to its due time rather than arm another timer */

struct chunk { struct chunk *next; size_t len, off; char data[]; };
struct conn;
/* One direction: bytes read from src wait in a FIFO, then go to dst once due. */
struct pipe_ { struct conn *c; int src, dst; struct chunk *head, *tail; unsigned ready; int eof; };
struct conn { struct pipe_ up, down; int connected, closed, events; struct conn *dead_next; }; /* events: release events pending */
struct endpoint { struct conn *c; int server_side; };
struct release { struct release *next; struct pipe_ *p; int64_t due; };

static int ep, tfd;
static int64_t delay_ns;
static struct release *rq_head, *rq_tail;
static struct conn *graveyard; /* freed after the current batch of epoll events, which may still name them */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what) { perror(what); exit(1); }

static void arm_timer(void) {
    struct itimerspec its = {0};
    if (rq_head) {
        its.it_value.tv_sec = rq_head->due / 1000000000;
        its.it_value.tv_nsec = rq_head->due % 1000000000;
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
    }
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) die("timerfd_settime");
}

static void watch(int fd, uint32_t events, struct endpoint *e, int op) {
    struct epoll_event ev = {.events = events, .data.ptr = e};
    if (epoll_ctl(ep, op, fd, &ev) < 0 && op != EPOLL_CTL_DEL) die("epoll_ctl");
}

static void free_conn_if_done(struct conn *c) {
    if (!c->closed || c->events) return;
    c->dead_next = graveyard;
    graveyard = c;
}

static void bury(void) {
    while (graveyard) {
        struct conn *c = graveyard;
        graveyard = c->dead_next;
        struct pipe_ *ps[2] = {&c->up, &c->down};
        for (int i = 0; i < 2; i++)
            for (struct chunk *k = ps[i]->head, *n; k; k = n) { n = k->next; free(k); }
        free(c);
    }
}

static void close_conn(struct conn *c) {
    if (c->closed) return;
    c->closed = 1;
    close(c->up.src);  /* closing removes them from the epoll set */
    close(c->up.dst);
    free_conn_if_done(c);
}

/* Write this direction's due chunks; returns 0 when the connection was closed. */
static int flush_pipe(struct pipe_ *p) {
    struct conn *c = p->c;
    if (c->closed) return 0;
    if (p == &c->up && !c->connected) return 1;
    while (p->ready && p->head) {
        struct chunk *k = p->head;
        ssize_t n = send(p->dst, k->data + k->off, k->len - k->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 1; /* EPOLLOUT is watched: resumed there */
            close_conn(c);
            return 0;
        }
        k->off += (size_t)n;
        if (k->off < k->len) continue;
        p->head = k->next;
        if (!p->head) p->tail = NULL;
        free(k);
        p->ready--;
    }
    if (p->eof && !p->head) { close_conn(c); return 0; } /* the sender left: deliver, then close both */
    return 1;
}

static void read_into(struct pipe_ *p) {
    static char buf[CHUNK_MAX];
    while (!p->eof) {
        ssize_t n = recv(p->src, buf, CHUNK_MAX, 0);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            if (n < 0 && errno == EINTR) continue;
            p->eof = 1; /* closed or failed: what is queued is still delivered, after the delay */
            if (!p->head) close_conn(p->c);
            return;
        }
        struct chunk *k = malloc(sizeof *k + (size_t)n);
        if (!k) die("malloc");
        memcpy(k->data, buf, (size_t)n);
        k->next = NULL; k->len = (size_t)n; k->off = 0;
        if (p->tail) p->tail->next = k; else p->head = k;
        p->tail = k;
        struct release *r = malloc(sizeof *r);
        if (!r) die("malloc");
        r->next = NULL; r->p = p; r->due = now_ns() + delay_ns;
        p->c->events++;
        int was_empty = rq_head == NULL;
        if (rq_tail) rq_tail->next = r; else rq_head = r;
        rq_tail = r;
        if (was_empty) arm_timer();
    }
}

static void on_timer(void) {
    uint64_t expirations;
    if (read(tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN) die("read timerfd");
    int64_t now = now_ns();
    while (rq_head && rq_head->due <= now + EARLY_NS) {
        struct release *r = rq_head;
        rq_head = r->next;
        if (!rq_head) rq_tail = NULL;
        struct conn *c = r->p->c;
        c->events--;
        if (!c->closed) { r->p->ready++; flush_pipe(r->p); }
        else free_conn_if_done(c);
        free(r);
    }
    arm_timer();
}

static int parse_hostport(const char *s, struct sockaddr_in *sa) {
    const char *colon = strrchr(s, ':');
    if (!colon) return -1;
    char host[64];
    size_t hl = (size_t)(colon - s);
    if (hl >= sizeof host) return -1;
    memcpy(host, s, hl); host[hl] = 0;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, strcmp(host, "localhost") ? host : "127.0.0.1", &sa->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv) {
    const char *listen_at = "127.0.0.1:0", *target_unix = NULL, *target = NULL;
    double delay_ms = 0.5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--listen")) listen_at = argv[i + 1];
        else if (!strcmp(argv[i], "--target-unix")) target_unix = argv[i + 1];
        else if (!strcmp(argv[i], "--target")) target = argv[i + 1];
        else if (!strcmp(argv[i], "--delay-ms")) delay_ms = atof(argv[i + 1]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (!target_unix && !target) { fprintf(stderr, "--target-unix or --target is required\n"); return 2; }
    delay_ns = (int64_t)(delay_ms * 1e6);

    struct sockaddr_in lsa, tsa;
    struct sockaddr_un usa;
    if (parse_hostport(listen_at, &lsa) < 0) { fprintf(stderr, "bad --listen\n"); return 2; }
    if (target && parse_hostport(target, &tsa) < 0) { fprintf(stderr, "bad --target\n"); return 2; }
    if (target_unix) {
        memset(&usa, 0, sizeof usa);
        usa.sun_family = AF_UNIX;
        if (strlen(target_unix) >= sizeof usa.sun_path) { fprintf(stderr, "socket path too long\n"); return 2; }
        strcpy(usa.sun_path, target_unix);
    }

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&lsa, sizeof lsa) < 0) die("bind");
    if (listen(lfd, 1024) < 0) die("listen");
    socklen_t sl = sizeof lsa;
    getsockname(lfd, (struct sockaddr *)&lsa, &sl);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    ep = epoll_create1(EPOLL_CLOEXEC);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (sfd < 0 || ep < 0 || tfd < 0) die("setup");
    static struct endpoint listener, timer, sig;
    watch(lfd, EPOLLIN, &listener, EPOLL_CTL_ADD);
    watch(tfd, EPOLLIN, &timer, EPOLL_CTL_ADD);
    watch(sfd, EPOLLIN, &sig, EPOLL_CTL_ADD);

    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &lsa.sin_addr, addr, sizeof addr);
    printf("listening %s:%d\n", addr, ntohs(lsa.sin_port));
    fflush(stdout);

    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
        for (int i = 0; i < n; i++) {
            struct endpoint *e = evs[i].data.ptr;
            if (e == &sig) return 0;
            if (e == &timer) { on_timer(); continue; }
            if (e == &listener) {
                int cfd;
                while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    int sfd2 = target_unix ? socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
                                           : socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                    int rc = target_unix ? connect(sfd2, (struct sockaddr *)&usa, sizeof usa)
                                         : connect(sfd2, (struct sockaddr *)&tsa, sizeof tsa);
                    if (rc < 0 && errno != EINPROGRESS && errno != EAGAIN) { close(sfd2); close(cfd); continue; }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    if (!target_unix) setsockopt(sfd2, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *c = calloc(1, sizeof *c);
                    struct endpoint *ec = calloc(1, sizeof *ec), *es = calloc(1, sizeof *es);
                    if (!c || !ec || !es) die("calloc");
                    c->up = (struct pipe_){.c = c, .src = cfd, .dst = sfd2};
                    c->down = (struct pipe_){.c = c, .src = sfd2, .dst = cfd};
                    c->connected = rc == 0;
                    ec->c = c; es->c = c; es->server_side = 1;
                    /* the endpoints live as long as the process: a few bytes per connection ever made */
                    watch(cfd, EPOLLIN | EPOLLOUT | EPOLLET, ec, EPOLL_CTL_ADD);
                    watch(sfd2, EPOLLIN | EPOLLOUT | EPOLLET, es, EPOLL_CTL_ADD);
                }
                continue;
            }
            struct conn *c = e->c;
            if (c->closed) continue;
            uint32_t ev = evs[i].events;
            struct pipe_ *in = e->server_side ? &c->down : &c->up;   /* what this socket sends us */
            struct pipe_ *out = e->server_side ? &c->up : &c->down;  /* what we send to this socket */
            if (ev & EPOLLOUT) {
                if (e->server_side && !c->connected) {
                    int err = 0;
                    socklen_t el = sizeof err;
                    getsockopt(c->up.dst, SOL_SOCKET, SO_ERROR, &err, &el);
                    if (err) { close_conn(c); continue; }
                    c->connected = 1;
                }
                if (!flush_pipe(out)) continue;
            }
            if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_into(in);
        }
        bury();
    }
}
