/*
 * otaup-load — N simulated terminals upgrade through one otaupd.
 *
 *   otaup-load --server ADDR:PORT --terminals N --image V1 [--target V2] [--rtt MS]
 *              [--rate KBITS] [--frame N] [--window N] [--slot BYTES] [--model M]
 *              [--version V] [--build-time T] [--daemon-pid PID] [--limit S] [--id-prefix P]
 *   otaup-load --make-images DIR
 *
 * One process, one epoll loop: N terminals, each the real applier on its
 * own small simulated flash in RAM (otaup_simterm) holding V1 and sample
 * personal data, each with its own TCP connection to otaupd on loopback.
 * Every connection goes through an emulated link: RTT/2 each way and a
 * rate (--rate kbit/s, both directions) that serialises frames, so that
 * the server's window meets a long, slow link. All terminals connect
 * first, then run concurrently (the daemon runs with --auto-request).
 *
 * It prints: terminals upgraded, wall time, upgrades per second, the most
 * sessions open at once, the daemon's CPU time per upgrade and its memory
 * per session (from /proc/PID with --daemon-pid: RSS at the peak of
 * concurrent sessions minus RSS before the first connection), the link
 * utilisation during the transfers (busy time of each terminal's downlink
 * between its first and last BATCH frame, averaged), bytes per upgrade.
 * Exit 0 when every terminal upgraded and its image equals the target.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "otaup/apply.h"
#include "otaup/error.h"
#include "otaup/image.h"
#include "otaup/proto.h"
#include "otaup/simflash.h"
#include "otaup/simterm.h"

typedef struct frm {
    struct frm *next;
    uint64_t at;
    uint32_t n;
    uint8_t p[];
} frm;

typedef struct fifo {
    frm *head, *tail;
} fifo;

typedef struct tm_ {
    otaup_simterm *t;
    int fd, idx, connected, done, failed, closed;
    uint8_t acc[8192];
    size_t acc_len;
    uint8_t *w;          /* bytes for the socket */
    size_t wlen, wcap;
    fifo down, up;
    uint64_t down_free, up_free; /* when the emulated link is free (us) */
    uint64_t rx, tx;
    uint64_t t_conn, t_done;
    uint64_t x_first, x_last, x_busy; /* transfer phase on the downlink (us) */
    int x_seen;
} tm;

typedef struct ev {
    uint64_t at;
    int idx, dir;
} ev;

static tm *T;
static int N;
static ev *heap;
static size_t hn, hcap;
static uint64_t rtt_us, rate_bps;
static int ep;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint32_t clock_cb(void *ctx)
{
    (void)ctx;
    return (uint32_t)(now_us() / 1000u);
}

static void hpush(uint64_t at, int idx, int dir)
{
    size_t i;
    if (hn == hcap) {
        hcap = hcap ? 2 * hcap : 4096;
        heap = realloc(heap, hcap * sizeof *heap);
        if (heap == NULL) {
            abort();
        }
    }
    i = hn++;
    while (i > 0 && heap[(i - 1) / 2].at > at) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i].at = at;
    heap[i].idx = idx;
    heap[i].dir = dir;
}

static ev hpop(void)
{
    ev top = heap[0], last = heap[--hn];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= hn) {
            break;
        }
        if (c + 1 < hn && heap[c + 1].at < heap[c].at) {
            c++;
        }
        if (heap[c].at >= last.at) {
            break;
        }
        heap[i] = heap[c];
        i = c;
    }
    if (hn > 0) {
        heap[i] = last;
    }
    return top;
}

/* a frame onto an emulated link: serialised at the rate, then RTT/2 */
static void link_put(tm *k, int dir, const uint8_t *p, size_t n)
{
    uint64_t now = now_us(), *free_at = dir ? &k->up_free : &k->down_free, start, ser;
    frm *f = malloc(sizeof *f + n);
    fifo *q = dir ? &k->up : &k->down;
    if (f == NULL) {
        abort();
    }
    ser = rate_bps ? (uint64_t)n * 8u * 1000000u / rate_bps : 0;
    start = *free_at > now ? *free_at : now;
    *free_at = start + ser;
    f->at = start + ser + rtt_us / 2;
    f->n = (uint32_t)n;
    f->next = NULL;
    memcpy(f->p, p, n);
    if (q->tail != NULL) {
        q->tail->next = f;
    } else {
        q->head = f;
    }
    q->tail = f;
    if (dir == 0) {
        /* downlink busy time during this terminal's transfer */
        if (p[3] == OTAUP_MSG_BATCH) {
            if (!k->x_seen) {
                k->x_first = start;
                k->x_seen = 1;
            }
            k->x_last = start + ser;
        }
        if (k->x_seen) {
            k->x_busy += ser;
        }
    }
    hpush(f->at, k->idx, dir);
}

static int send_cb(void *ctx, const uint8_t *buf, size_t len)
{
    tm *k = ctx;
    k->tx += len;
    link_put(k, 1, buf, len);
    return (int)len;
}

static void flush_w(tm *k)
{
    while (k->wlen > 0 && k->fd >= 0) {
        ssize_t w = send(k->fd, k->w, k->wlen, MSG_NOSIGNAL);
        if (w <= 0) {
            return;
        }
        memmove(k->w, k->w + w, k->wlen - (size_t)w);
        k->wlen -= (size_t)w;
    }
}

static void finish(tm *k, int failed)
{
    if (k->done) {
        return;
    }
    k->done = 1;
    k->failed = failed;
    k->t_done = now_us();
    if (k->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, k->fd, NULL);
        close(k->fd);
        k->fd = -1;
    }
}

static void deliver(const ev *e)
{
    tm *k = &T[e->idx];
    fifo *q = e->dir ? &k->up : &k->down;
    frm *f = q->head;
    if (f == NULL) {
        return;
    }
    q->head = f->next;
    if (q->head == NULL) {
        q->tail = NULL;
    }
    if (!k->done) {
        if (e->dir) { /* terminal -> server: into the socket */
            if (k->wlen + f->n > k->wcap) {
                k->wcap = (k->wlen + f->n) * 2;
                k->w = realloc(k->w, k->wcap);
                if (k->w == NULL) {
                    abort();
                }
            }
            memcpy(k->w + k->wlen, f->p, f->n);
            k->wlen += f->n;
            flush_w(k);
        } else {
            otaup_apply *ap = otaup_simterm_apply(k->t);
            (void)otaup_apply_feed(ap, f->p, f->n);
            otaup_simterm_step(k->t);
            if (otaup_apply_done(ap) && k->closed) {
                finish(k, otaup_apply_result(ap) != 0);
            }
        }
    }
    free(f);
    if (!k->done && k->closed && k->down.head == NULL) {
        finish(k, 0); /* judged by its flash at the end */
    }
}

static void on_readable(tm *k)
{
    for (;;) {
        ssize_t r = recv(k->fd, k->acc + k->acc_len, sizeof k->acc - k->acc_len, 0);
        size_t off = 0;
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            /* the server closed: what is still on the emulated link arrives, then done */
            k->closed = 1;
            epoll_ctl(ep, EPOLL_CTL_DEL, k->fd, NULL);
            close(k->fd);
            k->fd = -1;
            if (k->down.head == NULL) {
                finish(k, 0);
            }
            return;
        }
        if (r < 0) {
            return;
        }
        k->rx += (uint64_t)r;
        k->acc_len += (size_t)r;
        while (k->acc_len - off >= OTAUP_FRAME_HEADER_SIZE) {
            size_t fl = (size_t)(k->acc[off + 6] | k->acc[off + 7] << 8) + OTAUP_FRAME_OVERHEAD;
            if (fl > sizeof k->acc) {
                finish(k, 1);
                return;
            }
            if (k->acc_len - off < fl) {
                break;
            }
            link_put(k, 0, k->acc + off, fl);
            off += fl;
        }
        memmove(k->acc, k->acc + off, k->acc_len - off);
        k->acc_len -= off;
    }
}

static long proc_value(int pid, const char *key)
{
    char path[64], line[256];
    FILE *f;
    long v = -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, strlen(key)) == 0) {
            v = strtol(line + strlen(key), NULL, 10);
        }
    }
    fclose(f);
    return v;
}

static double proc_cpu_s(int pid)
{
    char path[64], buf[1024], *p;
    FILE *f;
    unsigned long ut = 0, st = 0;
    int i;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (f == NULL || fgets(buf, sizeof buf, f) == NULL) {
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    fclose(f);
    p = strrchr(buf, ')');
    if (p == NULL) {
        return -1;
    }
    p += 2;
    for (i = 3; i < 14; i++) { /* fields 14 and 15: utime, stime */
        p = strchr(p, ' ');
        if (p == NULL) {
            return -1;
        }
        p++;
    }
    if (sscanf(p, "%lu %lu", &ut, &st) != 2) {
        return -1;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat s;
    if (f == NULL || fstat(fileno(f), &s) != 0 || s.st_size <= 0) {
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    *len = (size_t)s.st_size;
    *out = malloc(*len);
    if (*out == NULL || fread(*out, 1, *len, f) != *len) {
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

/* A 24 KiB "firmware" and its next version: code shifted by an insertion
 * at a quarter, a changed table, an appended part. */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void code(uint8_t *p, size_t n, uint64_t seed)
{
    static const uint8_t ops[][4] = { { 0x00, 0xBF, 0x70, 0x47 }, { 0x2D, 0xE9, 0xF0, 0x41 },
                                      { 0xBD, 0xE8, 0xF0, 0x81 }, { 0x4F, 0xF0, 0x00, 0x03 },
                                      { 0x13, 0x44, 0x18, 0x46 }, { 0x08, 0x68, 0x01, 0x30 },
                                      { 0xFF, 0xF7, 0x00, 0xF8 }, { 0x10, 0xB5, 0x04, 0x46 } };
    size_t i = 0, k;
    while (i < n) {
        uint64_t r = mix(&seed);
        for (k = 0; k < 4 && i < n; k++) {
            p[i++] = r % 16 == 0 ? (uint8_t)(r >> (8 * (k + 2))) : ops[r % 8][k] ^ (k == 1 ? (uint8_t)((r >> 8) & 7) : 0);
        }
    }
}

static int make_images(const char *dir)
{
    /* 48 KiB of code; 2.0 inserts 200 bytes at 1/8 (what follows shifts),
     * replaces a 16 KiB module with new code, and appends 2 KiB */
    static uint8_t v1[49152], v2[49152 + 4096];
    char path[512];
    size_t n = 0;
    FILE *f;
    code(v1, sizeof v1, 1);
    memcpy(v2, v1, 6000);
    n = 6000;
    code(v2 + n, 200, 2);
    n += 200;
    memcpy(v2 + n, v1 + 6000, sizeof v1 - 6000);
    n += sizeof v1 - 6000;
    {
        uint64_t s = 77;
        size_t i;
        for (i = 20000; i < 36384; i++) { /* the new module: new code and constants */
            v2[i] = (uint8_t)mix(&s);
        }
    }
    code(v2 + n, 2048, 4);
    n += 2048;
    snprintf(path, sizeof path, "%s/v1.bin", dir);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(v1, 1, sizeof v1, f) != sizeof v1 || fclose(f) != 0) {
        return 1;
    }
    snprintf(path, sizeof path, "%s/v2.bin", dir);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(v2, 1, n, f) != n || fclose(f) != 0) {
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *server = "127.0.0.1:7070", *image = NULL, *model = "LOAD-M", *version = "1.0", *prefix = "L";
    const char *target = NULL;
    unsigned long build_time = 1000, frame = 1024, window = 8, limit_s = 600, slot = 65536;
    int dpid = 0, i, upgraded = 0, failed = 0, open_now = 0, max_open = 0, connected = 0;
    uint8_t *img = NULL, *tgt = NULL, th[16];
    size_t img_len = 0, tgt_len = 0;
    struct sockaddr_in sa;
    uint64_t t0, t_first = 0, t_last = 0, last_poll = 0, rx_total = 0, xfer_n = 0;
    double cpu0 = 0, cpu1 = 0, util_sum = 0, util_min = 1e9;
    long rss0 = -1, rss_peak = -1;
    struct rusage ru;
    rtt_us = 100000;
    rate_bps = 256000;
    N = 1000;
    if (argc == 3 && strcmp(argv[1], "--make-images") == 0) {
        return make_images(argv[2]);
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: otaup-load --server ADDR:PORT --terminals N --image V1 [--target V2] [--rtt MS]\n"
               "                  [--rate KBITS] [--frame N] [--window N] [--slot BYTES] [--model M]\n"
               "                  [--version V] [--build-time T] [--daemon-pid PID] [--limit S]\n"
               "                  [--id-prefix P]\n"
               "       otaup-load --make-images DIR\n"
               "N simulated terminals upgrade through one otaupd (docs/performance.md).\n"
               "exit codes: 0 every terminal upgraded to the target, 1 failure, 2 usage error\n");
        return 0;
    }
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "otaup-load: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--server") == 0) {
            server = argv[++i];
        } else if (strcmp(a, "--terminals") == 0) {
            N = atoi(argv[++i]);
        } else if (strcmp(a, "--image") == 0) {
            image = argv[++i];
        } else if (strcmp(a, "--target") == 0) {
            target = argv[++i];
        } else if (strcmp(a, "--rtt") == 0) {
            rtt_us = strtoull(argv[++i], NULL, 10) * 1000u;
        } else if (strcmp(a, "--rate") == 0) {
            rate_bps = strtoull(argv[++i], NULL, 10) * 1000u;
        } else if (strcmp(a, "--frame") == 0) {
            frame = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(a, "--window") == 0) {
            window = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(a, "--slot") == 0) {
            slot = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(a, "--model") == 0) {
            model = argv[++i];
        } else if (strcmp(a, "--version") == 0) {
            version = argv[++i];
        } else if (strcmp(a, "--build-time") == 0) {
            build_time = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(a, "--daemon-pid") == 0) {
            dpid = atoi(argv[++i]);
        } else if (strcmp(a, "--limit") == 0) {
            limit_s = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(a, "--id-prefix") == 0) {
            prefix = argv[++i];
        } else {
            fprintf(stderr, "otaup-load: unknown option %s\n", a);
            return 2;
        }
    }
    if (image == NULL || N <= 0 || read_file(image, &img, &img_len) != 0 ||
        (target != NULL && read_file(target, &tgt, &tgt_len) != 0)) {
        fprintf(stderr, "otaup-load: --image V1 (and --target V2) must be readable files; --terminals N > 0\n");
        return 2;
    }
    if (tgt != NULL) {
        otaup_hash128(tgt, tgt_len, th);
    }
    {
        char host[64];
        const char *c = strrchr(server, ':');
        if (c == NULL || (size_t)(c - server) >= sizeof host) {
            return 2;
        }
        memcpy(host, server, (size_t)(c - server));
        host[c - server] = '\0';
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)atoi(c + 1));
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
            return 2;
        }
    }
    T = calloc((size_t)N, sizeof *T);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (T == NULL || ep < 0) {
        return 1;
    }
    for (i = 0; i < N; i++) {
        otaup_simterm_options o;
        char id[64];
        otaup_simterm_options_init(&o);
        snprintf(id, sizeof id, "%s%05d", prefix, i);
        o.terminal_id = id;
        o.model = model;
        o.slot_size = (uint32_t)slot;
        o.user_size = 4096;
        o.max_frame = (uint32_t)frame;
        o.window = (uint16_t)window;
        o.retransmit_ms = 1000;
        T[i].idx = i;
        T[i].fd = -1;
        if (otaup_simterm_new(&o, &T[i].t) != 0 ||
            otaup_simterm_provision(T[i].t, img, img_len, version, build_time) != 0 ||
            otaup_simterm_boot(T[i].t, send_cb, &T[i], clock_cb, NULL) != 0) {
            fprintf(stderr, "otaup-load: terminal %d: cannot provision (image larger than --slot?)\n", i);
            return 1;
        }
    }
    if (dpid > 0) {
        rss0 = proc_value(dpid, "VmRSS:");
        cpu0 = proc_cpu_s(dpid);
    }
    fprintf(stderr, "otaup-load: %d terminals provisioned (%zu-byte image); connecting\n", N, img_len);
    t0 = now_us();
    /* everyone connects first: N sessions at once */
    for (i = 0; i < N; i++) {
        tm *k = &T[i];
        struct epoll_event e;
        int one = 1;
        k->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (k->fd < 0 || connect(k->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            fprintf(stderr, "otaup-load: connect %d: %s\n", i, strerror(errno));
            finish(k, 1);
            continue;
        }
        setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(k->fd, F_SETFL, fcntl(k->fd, F_GETFL) | O_NONBLOCK);
        e.events = EPOLLIN | EPOLLRDHUP;
        e.data.u32 = (uint32_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, k->fd, &e);
        k->connected = 1;
        k->t_conn = now_us();
        connected++;
        (void)otaup_apply_connect(otaup_simterm_apply(k->t));
    }
    t_first = t0;
    for (;;) {
        struct epoll_event evs[512];
        uint64_t now = now_us(), wait_ms = 5;
        int n, done = 0;
        if (hn > 0 && heap[0].at > now) {
            uint64_t d = (heap[0].at - now) / 1000u;
            wait_ms = d < wait_ms ? d : wait_ms;
        } else if (hn > 0) {
            wait_ms = 0;
        }
        n = epoll_wait(ep, evs, 512, (int)wait_ms);
        for (i = 0; i < n; i++) {
            tm *k = &T[evs[i].data.u32];
            if (!k->done) {
                on_readable(k);
            }
        }
        now = now_us();
        while (hn > 0 && heap[0].at <= now) {
            ev e = hpop();
            deliver(&e);
        }
        if (now - last_poll >= 20000) {
            last_poll = now;
            open_now = 0;
            for (i = 0; i < N; i++) {
                tm *k = &T[i];
                if (k->done) {
                    done++;
                    continue;
                }
                open_now++;
                (void)otaup_apply_poll(otaup_simterm_apply(k->t));
                otaup_simterm_step(k->t);
                flush_w(k);
            }
            if (open_now > max_open) {
                max_open = open_now;
            }
            if (dpid > 0 && open_now >= max_open) {
                long r = proc_value(dpid, "VmRSS:");
                if (r > rss_peak) {
                    rss_peak = r;
                }
            }
            if (done == N) {
                break;
            }
            if (now - t0 > (uint64_t)limit_s * 1000000u) {
                fprintf(stderr, "otaup-load: time limit (%lu s) reached with %d terminals not done\n", limit_s,
                        N - done);
                break;
            }
        }
    }
    if (dpid > 0) {
        cpu1 = proc_cpu_s(dpid);
    }
    for (i = 0; i < N; i++) {
        tm *k = &T[i];
        uint8_t h[16];
        int ok;
        if (!k->done) {
            failed++;
            continue;
        }
        otaup_simterm_image_hash(k->t, h);
        ok = !k->failed && otaup_simterm_user_intact(k->t) && (tgt == NULL || memcmp(h, th, 16) == 0);
        if (!ok) {
            /* a terminal whose last ACK was lost finishes at its next boot: count what the flash says */
            otaup_simterm_boot(k->t, send_cb, k, clock_cb, NULL);
            otaup_simterm_image_hash(k->t, h);
            ok = otaup_simterm_user_intact(k->t) && tgt != NULL && memcmp(h, th, 16) == 0;
        }
        if (ok) {
            upgraded++;
        } else {
            failed++;
        }
        if (k->t_done > t_last) {
            t_last = k->t_done;
        }
        rx_total += k->rx;
        if (k->x_seen && k->x_last > k->x_first) {
            double u = (double)k->x_busy / (double)(k->x_last - k->x_first);
            if (u > 1.0) {
                u = 1.0;
            }
            util_sum += u;
            if (u < util_min) {
                util_min = u;
            }
            xfer_n++;
        }
    }
    getrusage(RUSAGE_SELF, &ru);
    {
        double wall = (double)(t_last - t_first) / 1e6;
        printf("terminals            %d (%d upgraded, %d failed), image %zu bytes, frames %lu bytes, window %lu\n", N,
               upgraded, failed, img_len, frame, window);
        printf("emulated link        rtt %llu ms, %llu kbit/s each way, per terminal\n",
               (unsigned long long)(rtt_us / 1000u), (unsigned long long)(rate_bps / 1000u));
        printf("sessions at once     %d (max open)\n", max_open);
        printf("wall time            %.1f s (first connect to last result)\n", wall);
        printf("upgrades per second  %.1f\n", wall > 0 ? upgraded / wall : 0.0);
        printf("bytes per upgrade    %.0f received (image %zu)\n", N ? (double)rx_total / N : 0.0, img_len);
        if (xfer_n > 0) {
            printf("link utilisation     %.1f %% mean, %.1f %% min (downlink busy during each transfer)\n",
                   100.0 * util_sum / (double)xfer_n, 100.0 * util_min);
        }
        if (dpid > 0) {
            printf("daemon cpu           %.2f s total, %.2f ms per upgrade\n", cpu1 - cpu0,
                   upgraded ? 1000.0 * (cpu1 - cpu0) / upgraded : 0.0);
            printf("daemon memory        %ld KiB before, %ld KiB at %d open sessions: %.1f KiB per session\n", rss0,
                   rss_peak, max_open, max_open ? (double)(rss_peak - rss0) / max_open : 0.0);
        }
        printf("load generator cpu   %.2f s (%d appliers, simulated flash)\n",
               (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                   ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6,
               N);
    }
    return failed == 0 ? 0 : 1;
}
