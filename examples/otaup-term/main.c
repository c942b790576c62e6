/*
 * otaup-term — a simulated terminal over TCP (docs/server.md).
 *
 *   otaup-term --flash FILE --init IMAGE --id ID --model M --version V --build-time T
 *              [--layout inplace|ab] [--slot-size N] [--sector-size N]   (make a new terminal)
 *   otaup-term --flash FILE [--connect ADDR:PORT] [options]              (connect and upgrade)
 *
 * The terminal's flash lives in FILE through the simulated NOR flash; its
 * identity in FILE.meta. The real terminal applier runs on it: it reports
 * its software, shows the server's notice, sends its personal data for
 * backup, applies the update with its power-safe journal, gets its data
 * back if the upgrade damaged it, and reports the result.
 *
 * Fault injection: --cut-after N (the power goes off after N flash write
 * operations: the program stops with exit code 3 and the flash file stays
 * as the cut left it; run it again to resume), --fail-after N (the N-th
 * flash write operation of the run fails as a driver reports it, power
 * staying on: the terminal goes on and the upgrade resumes), --torn, and on the link
 * --drop P, --corrupt P, --duplicate P (percent of frames, both
 * directions), --delay P:MS (P percent of frames held up to MS ms longer),
 * --rtt MS (every frame waits MS/2 each way). --damage-user-data makes the
 * "new software" corrupt the user's data right after the image is
 * verified, so that the server must restore it.
 *
 * Signed updates: --pub KEY.pub (repeatable) gives the terminal trusted
 * public keys, as if built into its firmware. It then verifies every
 * update before its first flash operation (docs/security.md §5.1) and
 * takes signed updates only: an unsigned one, one signed by another key,
 * for another model or with an older security counter is refused with
 * nothing written. --require-signed states that requirement (refused
 * without --pub).
 *
 * Sealed backups: --device-key FILE gives the terminal a device key (32
 * bytes: raw, or 64 hex digits) that survives its upgrades. Its user data
 * then leave it sealed (AES-256-GCM, docs/security.md §7): the server
 * stores ciphertext it cannot read, and the terminal authenticates every
 * restored chunk before writing it. Give the same key on every run.
 *
 * Exit codes: 0 upgraded or up to date, 1 failed, 2 usage, 3 power cut.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "otaup/apply.h"
#include "otaup/error.h"
#include "otaup/features.h"
#include "otaup/image.h"
#include "otaup/proto.h"
#include "otaup/simflash.h"
#include "otaup/sign.h"
#include "otaup/simterm.h"

#define MAXQ 4096

typedef struct qf {
    uint64_t at;
    size_t n;
    uint8_t *p;
} qf;

typedef struct fq {
    qf f[MAXQ];
    size_t n;
} fq;

typedef struct term {
    otaup_simterm *t;
    int fd;
    /* faults */
    unsigned drop, corrupt, dup, delay_pct, delay_ms, rtt;
    uint64_t rng;
    fq out, in;         /* frames waiting (latency, delay) */
    uint8_t *wbuf;      /* bytes for the socket */
    size_t wlen, wcap;
    uint8_t acc[70000]; /* incoming bytes not yet cut into frames */
    size_t acc_len;
    /* counters */
    uint64_t bytes_rx, bytes_tx, frames_rx, frames_tx, dropped, restore_rx;
    int tty;
    uint64_t t0;
    int server_abort; /* the reason of an ABORT from the server on this connection (0: none) */
} term;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t clock_cb(void *ctx)
{
    (void)ctx;
    return (uint32_t)mono_ms();
}

static uint64_t rnd(term *k)
{
    uint64_t z = (k->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: otaup-term --flash FILE --init IMAGE --id ID --model M --version V --build-time T\n"
            "                  [--layout inplace|ab] [--slot-size N] [--sector-size N] [--user-size N]\n"
            "       otaup-term --flash FILE [--connect ADDR:PORT] [--accept] [--frame N] [--window N]\n"
            "                  [--cut-after N] [--fail-after N] [--torn] [--drop P] [--corrupt P] [--duplicate P]\n"
            "                  [--delay P:MS] [--rtt MS] [--damage-user-data] [--reconnect N]\n"
            "                  [--timeout S] [--report FILE] [--quiet] [--seed N]\n"
            "                  [--pub KEY.pub ... [--require-signed]] [--device-key FILE]\n"
            "defaults: --connect 127.0.0.1:7070, in-place layout, 256 KiB slot, 4 KiB sectors\n"
            "--pub KEY.pub: a trusted public key (up to 8): the terminal then takes signed updates\n"
            "               only and verifies them before writing anything\n"
            "--device-key FILE: the terminal's device key (32 raw bytes or 64 hex digits): its\n"
            "               backups are sealed on the terminal, unreadable by the server\n");
}

/* ---- the link, with faults ------------------------------------------------------ */

static void q_push(fq *q, uint64_t at, const uint8_t *p, size_t n)
{
    size_t i;
    if (q->n == MAXQ) {
        return; /* the link is full: the frame is lost */
    }
    i = q->n++;
    while (i > 0 && q->f[i - 1].at > at) { /* keep the queue ordered by time */
        q->f[i] = q->f[i - 1];
        i--;
    }
    q->f[i].at = at;
    q->f[i].n = n;
    q->f[i].p = malloc(n);
    if (q->f[i].p == NULL) {
        q->n--;
        memmove(&q->f[i], &q->f[i + 1], (q->n - i) * sizeof q->f[0]);
        return;
    }
    memcpy(q->f[i].p, p, n);
}

static void q_pop(fq *q)
{
    free(q->f[0].p);
    memmove(&q->f[0], &q->f[1], (q->n - 1) * sizeof q->f[0]);
    q->n--;
}

/* one frame onto queue q, through the faults */
static void fault(term *k, fq *q, const uint8_t *p, size_t n)
{
    uint64_t now = mono_ms();
    int copies = 1, i;
    int dr = k->drop && rnd(k) % 100 < k->drop;
    if (getenv("TTRACE") && n >= 12) {
        fprintf(stderr, "TT %llu %s type=%02x fl=%02x seq=%u len=%u%s", (unsigned long long)now, q == &k->out ? "TX" : "RX", p[3], p[4],
                (unsigned)(p[8] | p[9] << 8 | p[10] << 16 | (unsigned)p[11] << 24), (unsigned)n, dr ? " DROP" : "");
        if ((p[3] == 0x0b || p[3] == 0x0c) && n >= 22) fprintf(stderr, " ack=%u st=%d win=%u", (unsigned)(p[12] | p[13] << 8 | p[14] << 16 | (unsigned)p[15] << 24), (int)(p[16] | p[17] << 8 | p[18] << 16 | (unsigned)p[19] << 24), (unsigned)(p[20] | p[21] << 8));
        fprintf(stderr, "\n");
    }
    if (dr) {
        k->dropped++;
        return;
    }
    if (k->dup && rnd(k) % 100 < k->dup) {
        copies = 2;
    }
    for (i = 0; i < copies; i++) {
        uint64_t at = now + k->rtt / 2;
        if (k->delay_pct && rnd(k) % 100 < k->delay_pct) {
            at += rnd(k) % (k->delay_ms + 1);
        }
        if (k->corrupt && rnd(k) % 100 < k->corrupt) {
            uint8_t *c = malloc(n);
            if (c == NULL) {
                continue;
            }
            memcpy(c, p, n);
            c[rnd(k) % n] ^= (uint8_t)(1u << (rnd(k) % 8));
            q_push(q, at, c, n);
            free(c);
        } else {
            q_push(q, at, p, n);
        }
    }
}

static int link_send(void *ctx, const uint8_t *buf, size_t len)
{
    term *k = ctx;
    if (otaup_simflash_is_cut(otaup_simterm_flash(k->t))) {
        return (int)len; /* no power: nothing leaves the terminal */
    }
    k->frames_tx++;
    fault(k, &k->out, buf, len);
    return (int)len;
}

static int wbuf_add(term *k, const uint8_t *p, size_t n)
{
    if (k->wlen + n > k->wcap) {
        size_t cap = (k->wlen + n) * 2;
        uint8_t *b = realloc(k->wbuf, cap);
        if (b == NULL) {
            return -1;
        }
        k->wbuf = b;
        k->wcap = cap;
    }
    memcpy(k->wbuf + k->wlen, p, n);
    k->wlen += n;
    return 0;
}

/* frames whose time has come: out to the socket, in to the applier */
static int pump_queues(term *k)
{
    uint64_t now = mono_ms();
    otaup_apply *ap = otaup_simterm_apply(k->t);
    while (k->out.n > 0 && k->out.f[0].at <= now) {
        if (wbuf_add(k, k->out.f[0].p, k->out.f[0].n) < 0) {
            return -1;
        }
        q_pop(&k->out);
    }
    while (k->in.n > 0 && k->in.f[0].at <= now) {
        (void)otaup_apply_feed(ap, k->in.f[0].p, k->in.f[0].n);
        q_pop(&k->in);
        otaup_simterm_step(k->t);
        if (otaup_simflash_is_cut(otaup_simterm_flash(k->t))) {
            return 0;
        }
    }
    while (k->wlen > 0) {
        ssize_t w = send(k->fd, k->wbuf, k->wlen, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (w <= 0) {
            return -1;
        }
        k->bytes_tx += (uint64_t)w;
        memmove(k->wbuf, k->wbuf + w, k->wlen - (size_t)w);
        k->wlen -= (size_t)w;
    }
    return 0;
}

/* bytes from the socket, cut into frames (a frame's length is in its header) */
static void received(term *k, const uint8_t *p, size_t n)
{
    size_t off = 0;
    int clean = k->drop == 0 && k->corrupt == 0 && k->dup == 0 && k->delay_pct == 0 && k->rtt == 0;
    k->bytes_rx += n;
    if (n > sizeof k->acc - k->acc_len) {
        n = sizeof k->acc - k->acc_len;
    }
    memcpy(k->acc + k->acc_len, p, n);
    k->acc_len += n;
    while (k->acc_len - off >= OTAUP_FRAME_HEADER_SIZE) {
        size_t fl;
        if (k->acc[off] != OTAUP_FRAME_MAGIC0 || k->acc[off + 1] != OTAUP_FRAME_MAGIC1) {
            off++; /* not in step with the frames: the applier's decoder sorts it out */
            continue;
        }
        fl = (size_t)(k->acc[off + 6] | k->acc[off + 7] << 8) + OTAUP_FRAME_OVERHEAD;
        if (k->acc_len - off < fl) {
            break;
        }
        k->frames_rx++;
        if (k->acc[off + 3] == OTAUP_MSG_ABORT) {
            /* why the server ends the session: shown if the link then closes */
            otaup_frame fr;
            otaup_msg_abort ab;
            if (otaup_frame_decode(k->acc + off, fl, OTAUP_FRAME_MAX, &fr) == 0 &&
                otaup_abort_decode(fr.payload, fr.payload_len, &ab) == 0 && ab.reason < 0) {
                k->server_abort = ab.reason;
            }
        }
        if (k->acc[off + 3] == OTAUP_MSG_RESTORE_DATA) {
            k->restore_rx += fl; /* the user's own data coming back */
        }
        if (clean) {
            (void)otaup_apply_feed(otaup_simterm_apply(k->t), k->acc + off, fl);
            otaup_simterm_step(k->t);
            if (otaup_simflash_is_cut(otaup_simterm_flash(k->t))) {
                k->acc_len = 0;
                return;
            }
        } else {
            fault(k, &k->in, k->acc + off, fl);
        }
        off += fl;
    }
    memmove(k->acc, k->acc + off, k->acc_len - off);
    k->acc_len -= off;
}

/* ---- display ---------------------------------------------------------------------- */

static const char *phase_name(uint8_t ph)
{
    static const char *const n[] = { "connect", "backup", "transfer", "verify", "restore", "commit", "done" };
    return ph < sizeof n / sizeof n[0] ? n[ph] : "?";
}

static void bar(term *k, int final)
{
    static uint64_t last;
    uint64_t now = mono_ms();
    uint32_t total = 0, done;
    otaup_apply *ap = otaup_simterm_apply(k->t);
    char b[41];
    unsigned i, fill;
    if (!k->tty || (!final && now - last < 100)) {
        return;
    }
    last = now;
    done = otaup_simterm_steps(k->t, &total);
    fill = total ? (unsigned)((uint64_t)done * 40u / total) : 0;
    if (ap->phase >= OTAUP_PHASE_VERIFY) {
        fill = 40;
    }
    for (i = 0; i < 40; i++) {
        b[i] = i < fill ? '#' : '.';
    }
    b[40] = '\0';
    fprintf(stderr, "\r%-8s [%s] step %u/%u  rx %6.1f KiB  tx %5.1f KiB ", phase_name(ap->phase), b, done, total,
            (double)k->bytes_rx / 1024.0, (double)k->bytes_tx / 1024.0);
    if (final) {
        fputc('\n', stderr);
    }
}

/* --connect ADDR:PORT as connect_to() takes it: an IPv4 address (or
 * localhost, or nothing: 127.0.0.1) and a port 1..65535 in digits. */
static int connect_spec_ok(const char *spec)
{
    char host[64];
    const char *c = strrchr(spec, ':'), *d;
    struct in_addr a;
    long port = 0;
    if (c == NULL || (size_t)(c - spec) >= sizeof host || c[1] == '\0') {
        return 0;
    }
    for (d = c + 1; *d != '\0'; d++) {
        if (*d < '0' || *d > '9' || port > 65535) {
            return 0;
        }
        port = port * 10 + (*d - '0');
    }
    memcpy(host, spec, (size_t)(c - spec));
    host[c - spec] = '\0';
    return port >= 1 && port <= 65535 &&
           (host[0] == '\0' || strcmp(host, "localhost") == 0 || inet_pton(AF_INET, host, &a) == 1);
}

/* Connect to ADDR:PORT within wait_ms (a host that does not answer must
 * not hold the run past --timeout). 0, -1 (errno says why) or -2 (a
 * malformed ADDR:PORT). */
static int connect_to(const char *spec, int *fd_out, uint64_t wait_ms)
{
    char host[64];
    const char *c = strrchr(spec, ':');
    struct sockaddr_in a;
    long port;
    char *end;
    int fd, one = 1;
    if (c == NULL || (size_t)(c - spec) >= sizeof host) {
        return -2;
    }
    memcpy(host, spec, (size_t)(c - spec));
    host[c - spec] = '\0';
    port = strtol(c + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535) {
        return -2;
    }
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0 || host[0] == '\0') {
        snprintf(host, sizeof host, "127.0.0.1");
    }
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        return -2;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        struct pollfd p;
        int err = 0, n;
        socklen_t el = sizeof err;
        if (errno != EINPROGRESS) {
            err = errno;
            close(fd);
            errno = err;
            return -1;
        }
        p.fd = fd;
        p.events = POLLOUT;
        p.revents = 0;
        do {
            n = poll(&p, 1, wait_ms > 600000u ? 600000 : (int)wait_ms);
        } while (n < 0 && errno == EINTR);
        if (n == 0) {
            err = ETIMEDOUT;
        } else if (n < 0) {
            err = errno;
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0) {
            err = errno;
        }
        if (err != 0) {
            close(fd);
            errno = err;
            return -1;
        }
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *fd_out = fd;
    return 0;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL) {
        fprintf(stderr, "otaup-term: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > (1 << 28)) {
        fprintf(stderr, "otaup-term: %s: not a non-empty regular file\n", path);
        fclose(f);
        return -1;
    }
    *len = (size_t)st.st_size;
    *out = malloc(*len);
    if (*out == NULL || fread(*out, 1, *len, f) != *len) {
        fprintf(stderr, "otaup-term: %s: read error\n", path);
        free(*out);
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

static int parse_u(const char *s, unsigned long max, unsigned long *v)
{
    char *end;
    errno = 0;
    *v = strtoul(s, &end, 10);
    /* digits only: no blanks or sign, which strtoul would take */
    return errno == 0 && *end == '\0' && s[0] >= '0' && s[0] <= '9' && *v <= max ? 0 : -1;
}

#define MAX_PUB 8

/* A trusted public key from a file (PEM or raw, as `otaup keygen` writes KEY.pub). 0 or -1 with a message. */
static int load_pub(const char *path, otaup_sec_key *out)
{
#if OTAUP_HAVE_MBEDTLS
    uint8_t *data;
    size_t len;
    otaup_key *k = NULL;
    int rc;
    if (read_file(path, &data, &len) != 0) {
        return -1;
    }
    rc = otaup_key_parse(data, len, &k);
    free(data);
    if (rc == 0) {
        rc = otaup_key_public(k, out->pub);
    }
    otaup_key_free(k);
    if (rc != 0) {
        fprintf(stderr, "otaup-term: --pub %s: not an ECDSA P-256 key (%s)\n", path, otaup_strerror(rc));
        return -1;
    }
    return 0;
#else
    (void)out;
    fprintf(stderr, "otaup-term: --pub %s: this build has no mbedTLS, so it cannot verify signatures\n", path);
    return -1;
#endif
}

/* The device key from a file: 32 raw bytes, or 64 hex digits (blanks
 * around them allowed). 0 or -1 with a message. */
static int load_device_key(const char *path, uint8_t key[32])
{
    uint8_t *data;
    size_t len, i, n = 0;
    int ok = 1;
    if (read_file(path, &data, &len) != 0) {
        return -1;
    }
    if (len == 32) {
        memcpy(key, data, 32);
    } else {
        for (i = 0; i < len && ok; i++) {
            int c = data[i], d = c >= '0' && c <= '9' ? c - '0'
                               : c >= 'a' && c <= 'f' ? c - 'a' + 10
                               : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                      : -1;
            if (d < 0) {
                ok = c == ' ' || c == '\n' || c == '\r' || c == '\t';
            } else if (n < 64) {
                key[n / 2] = (uint8_t)(n % 2 ? (key[n / 2] | d) : d << 4);
                n++;
            } else {
                ok = 0;
            }
        }
        ok = ok && n == 64;
    }
    memset(data, 0, len);
    free(data);
    if (!ok) {
        fprintf(stderr, "otaup-term: --device-key %s: not a 32-byte key (32 raw bytes or 64 hex digits)\n", path);
        return -1;
    }
    return 0;
}

/* Why the terminal refused an update (its verifier's verdict). */
/* What the server's ABORT code means coming from the server (the error
 * table's text is the terminal's own view: OTAUP_E_MODEL there is "manifest
 * for another model"). */
static const char *server_text(int code)
{
    switch (code) {
    case OTAUP_E_MODEL:
        return "this terminal id is registered with another model";
    case OTAUP_E_EXISTS:
        return "this terminal id is connected already (another session drives it)";
    case OTAUP_E_LIMIT:
        return "no delta fits this terminal's resources (the server's log says which)";
    default:
        return otaup_strerror(code);
    }
}

static const char *refusal_text(int code)
{
    switch (code) {
    case OTAUP_E_UNSIGNED:
        return "the update is not signed and this terminal takes signed updates only";
    case OTAUP_E_KEY:
        return "the update is signed by a key this terminal does not trust";
    case OTAUP_E_SIGNATURE:
        return "the update's signature does not verify";
    case OTAUP_E_ROLLBACK:
        return "the update's security counter is lower than the installed one (anti-rollback)";
    case OTAUP_E_OLDER:
        return "the update is older than the installed software";
    case OTAUP_E_MODEL:
        return "the update is signed for another model";
    case OTAUP_E_SOURCE_MISMATCH:
        return "the update was made for another installed image";
    default:
        return otaup_strerror(code);
    }
}

/* --build-time as otaupctl takes it: YYYY-MM-DD[THH:MM[:SS]][Z], UTC. 0 or -1. */
static int parse_date(const char *s, unsigned long *out)
{
    struct tm tm;
    int n = 0, m = 0;
    time_t t;
    memset(&tm, 0, sizeof tm);
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3) {
        return -1;
    }
    if (s[n] == 'T' || s[n] == ' ') {
        if (sscanf(s + n + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &m) != 2) {
            return -1;
        }
        n += 1 + m;
        if (s[n] == ':') {
            if (sscanf(s + n + 1, "%2d%n", &tm.tm_sec, &m) != 1) {
                return -1;
            }
            n += 1 + m;
        }
        if (s[n] == 'Z') {
            n++;
        }
    }
    if (s[n] != '\0' || tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    t = timegm(&tm);
    if (t < 0) {
        return -1;
    }
    *out = (unsigned long)t;
    return 0;
}

int main(int argc, char **argv)
{
    const char *flash = NULL, *init = NULL, *id = NULL, *model = NULL, *version = NULL, *server = "127.0.0.1:7070";
    const char *report = NULL;
    unsigned long build_time = 0, v;
    int have_build = 0, quiet = 0, accept = 0, torn = 0, i, rc, result = OTAUP_E_CLOSED, reconnects = 3, retry_refused;
    int up_to_date = 0, require_signed = 0, have_device_key = 0, connected = 0, never_connected = 0;
    int report_failed = 0;
    static uint8_t device_key[32];
    unsigned long cut_after = 0, fail_after = 0, timeout_s = 600;
    static otaup_sec_key pubs[MAX_PUB];
    size_t npubs = 0;
    otaup_simterm_options o;
    static term k;
    otaup_simterm *t = NULL;
    otaup_simflash_stats fs0, fs1;
    uint32_t wear0[4096];
    uint64_t start;
    char from[40];
    uint8_t from_hash[16];
    memset(&k, 0, sizeof k);
    otaup_simterm_options_init(&o);
    k.rng = 12345;
#define NEED(i) ((i) + 1 < argc)
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--flash") == 0 && NEED(i)) {
            flash = argv[++i];
        } else if (strcmp(a, "--init") == 0 && NEED(i)) {
            init = argv[++i];
        } else if (strcmp(a, "--id") == 0 && NEED(i)) {
            id = argv[++i];
        } else if (strcmp(a, "--model") == 0 && NEED(i)) {
            model = argv[++i];
        } else if (strcmp(a, "--version") == 0 && NEED(i)) {
            version = argv[++i];
        } else if (strcmp(a, "--build-time") == 0 && NEED(i)) {
            if (parse_u(argv[++i], 0xFFFFFFFFFFFFull, &build_time) != 0 && parse_date(argv[i], &build_time) != 0) {
                fprintf(stderr,
                        "otaup-term: bad --build-time '%s' (seconds since 1970, or YYYY-MM-DD[THH:MM[:SS]] UTC)\n",
                        argv[i]);
                return 2;
            }
            have_build = 1;
        } else if (strcmp(a, "--connect") == 0 && NEED(i)) {
            server = argv[++i];
        } else if (strcmp(a, "--layout") == 0 && NEED(i)) {
            i++;
            if (strcmp(argv[i], "inplace") == 0) {
                o.layout = OTAUP_LAYOUT_INPLACE;
            } else if (strcmp(argv[i], "ab") == 0) {
                o.layout = OTAUP_LAYOUT_AB;
            } else {
                fprintf(stderr, "otaup-term: --layout inplace or ab\n");
                return 2;
            }
        } else if ((strcmp(a, "--slot-size") == 0 || strcmp(a, "--sector-size") == 0 ||
                    strcmp(a, "--user-size") == 0 || strcmp(a, "--frame") == 0 || strcmp(a, "--window") == 0 ||
                    strcmp(a, "--cut-after") == 0 || strcmp(a, "--fail-after") == 0 || strcmp(a, "--drop") == 0 ||
                    strcmp(a, "--corrupt") == 0 ||
                    strcmp(a, "--duplicate") == 0 || strcmp(a, "--rtt") == 0 || strcmp(a, "--timeout") == 0 ||
                    strcmp(a, "--reconnect") == 0 || strcmp(a, "--seed") == 0) &&
                   NEED(i)) {
            unsigned long max = strstr(a, "size") ? 64ul << 20
                                : (strcmp(a, "--drop") == 0 || strcmp(a, "--corrupt") == 0 ||
                                   strcmp(a, "--duplicate") == 0)
                                    ? 100ul
                                : strcmp(a, "--frame") == 0  ? 65536ul
                                : strcmp(a, "--window") == 0 ? 1024ul
                                : strcmp(a, "--reconnect") == 0 ? 0x7FFFFFFFul /* an int: none above */
                                                             : 0xFFFFFFFFul;
            /* the protocol's smallest frame; a zero time bound would end every run at once */
            unsigned long min = strcmp(a, "--frame") == 0 ? 64ul : strcmp(a, "--timeout") == 0 ? 1ul : 0ul;
            if (parse_u(argv[++i], max, &v) != 0 || v < min) {
                fprintf(stderr, "otaup-term: bad value '%s' for %s (%lu..%lu)\n", argv[i], a, min, max);
                return 2;
            }
            if (strcmp(a, "--slot-size") == 0) {
                o.slot_size = (uint32_t)v;
            } else if (strcmp(a, "--sector-size") == 0) {
                o.sector_size = (uint32_t)v;
            } else if (strcmp(a, "--user-size") == 0) {
                o.user_size = (uint32_t)v;
            } else if (strcmp(a, "--frame") == 0) {
                o.max_frame = (uint32_t)v;
            } else if (strcmp(a, "--window") == 0) {
                o.window = (uint16_t)v;
            } else if (strcmp(a, "--cut-after") == 0) {
                cut_after = v;
            } else if (strcmp(a, "--fail-after") == 0) {
                fail_after = v;
            } else if (strcmp(a, "--drop") == 0) {
                k.drop = (unsigned)v;
            } else if (strcmp(a, "--corrupt") == 0) {
                k.corrupt = (unsigned)v;
            } else if (strcmp(a, "--duplicate") == 0) {
                k.dup = (unsigned)v;
            } else if (strcmp(a, "--rtt") == 0) {
                k.rtt = (unsigned)v;
            } else if (strcmp(a, "--timeout") == 0) {
                timeout_s = v;
            } else if (strcmp(a, "--reconnect") == 0) {
                reconnects = (int)v;
            } else {
                k.rng = v;
            }
        } else if (strcmp(a, "--delay") == 0 && NEED(i)) {
            unsigned p, ms;
            char c;
            if (sscanf(argv[++i], "%u:%u%c", &p, &ms, &c) != 2 || p > 100 || ms > 60000) {
                fprintf(stderr, "otaup-term: --delay P:MS (percent of frames, up to MS ms)\n");
                return 2;
            }
            k.delay_pct = p;
            k.delay_ms = ms;
        } else if (strcmp(a, "--pub") == 0 && NEED(i)) {
            if (npubs == MAX_PUB) {
                fprintf(stderr, "otaup-term: at most %d --pub keys\n", MAX_PUB);
                return 2;
            }
            if (load_pub(argv[++i], &pubs[npubs]) != 0) {
                return 2;
            }
            npubs++;
        } else if (strcmp(a, "--device-key") == 0 && NEED(i)) {
            if (load_device_key(argv[++i], device_key) != 0) {
                return 2;
            }
            have_device_key = 1;
        } else if (strcmp(a, "--require-signed") == 0) {
            require_signed = 1;
        } else if (strcmp(a, "--torn") == 0) {
            torn = 1;
        } else if (strcmp(a, "--accept") == 0) {
            accept = 1;
        } else if (strcmp(a, "--damage-user-data") == 0) {
            o.damage_user_data = 1;
        } else if (strcmp(a, "--report") == 0 && NEED(i)) {
            report = argv[++i];
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "otaup-term: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (flash == NULL) {
        fprintf(stderr, "otaup-term: --flash FILE is required\n");
        usage(stderr);
        return 2;
    }
    if (report != NULL && init == NULL) {
        /* a report that cannot be written is found before the run, not
         * after an upgrade whose figures it should hold */
        char d[1024];
        const char *slash = strrchr(report, '/');
        int ok;
        struct stat st;
        if (stat(report, &st) == 0 && S_ISDIR(st.st_mode)) {
            ok = 0; /* writable as a directory, not as a file */
            errno = EISDIR;
        } else if (access(report, F_OK) == 0) {
            ok = access(report, W_OK) == 0;
        } else {
            snprintf(d, sizeof d, "%.*s", slash == NULL ? 1 : slash == report ? 1 : (int)(slash - report),
                     slash == NULL ? "." : report);
            ok = access(d, W_OK | X_OK) == 0;
        }
        if (!ok) {
            fprintf(stderr, "otaup-term: --report %s: %s\n", report, strerror(errno));
            return 2;
        }
    }
    if ((id != NULL && (id[0] == '\0' || strlen(id) > 63)) || (model != NULL && (model[0] == '\0' || strlen(model) > 63)) ||
        (version != NULL && (version[0] == '\0' || strlen(version) > 31))) {
        fprintf(stderr, "otaup-term: --id and --model take 1..63 characters, --version 1..31\n");
        return 2;
    }
    if (init == NULL && !connect_spec_ok(server)) {
        fprintf(stderr, "otaup-term: --connect '%s': expected IPv4ADDR:PORT (port 1..65535, in digits)\n", server);
        return 2;
    }
    if (require_signed && npubs == 0) {
        fprintf(stderr, "otaup-term: --require-signed needs the trusted key: --pub KEY.pub\n");
        return 2;
    }
    o.flash_path = flash;
    o.terminal_id = id;
    o.model = model;
    o.keys = npubs > 0 ? pubs : NULL;
    o.nkeys = npubs;
    o.device_key = have_device_key ? device_key : NULL;
    if (init != NULL) {
        uint8_t *img;
        size_t len;
        char meta[1100];
        int io_errno;
        if (id == NULL || model == NULL || version == NULL || !have_build) {
            fprintf(stderr, "otaup-term: --init needs --id, --model, --version and --build-time\n");
            return 2;
        }
        if (read_file(init, &img, &len) != 0) {
            return 1;
        }
        snprintf(meta, sizeof meta, "%s.meta", flash);
        {
            struct stat st;
            if (lstat(flash, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
                fprintf(stderr, "otaup-term: %s: not a regular file; nothing done\n", flash);
                free(img);
                return 1;
            }
        }
        (void)unlink(flash); /* a new terminal */
        (void)unlink(meta);
        errno = 0;
        rc = otaup_simterm_new(&o, &t);
        io_errno = errno;
        if (rc == 0) {
            rc = otaup_simterm_provision(t, img, len, version, build_time);
        }
        free(img);
        if (rc < 0) {
            fprintf(stderr, "otaup-term: cannot make terminal %s in %s: %s%s%s\n", id, flash, otaup_strerror(rc),
                    rc == OTAUP_E_RANGE      ? " (image larger than the slot: --slot-size)"
                    : rc == OTAUP_E_GEOMETRY ? " (--sector-size: a multiple of 8 bytes, at least 256, for the journal)"
                    : rc == OTAUP_E_IO       ? ": "
                                             : "",
                    rc == OTAUP_E_IO ? strerror(io_errno) : "");
            otaup_simterm_free(t);
            return rc == OTAUP_E_INVAL ? 2 : 1;
        }
        if (!quiet) {
            printf("otaup-term: terminal %s (model %s) runs %s, %zu-byte image, %u KiB slot, personal data "
                   "%u bytes, flash in %s\n",
                   id, model, version, len, otaup_simterm_slot_size(t) / 1024u, otaup_simterm_user_size(t), flash);
        }
        otaup_simterm_free(t);
        return 0;
    }
    {
        struct stat st;
        char meta[1100];
        snprintf(meta, sizeof meta, "%s.meta", flash);
        uint32_t map = 0;
        if (stat(flash, &st) != 0 || stat(meta, &st) != 0) {
            fprintf(stderr, "otaup-term: %s: no terminal there (make one with --init IMAGE ...)\n", flash);
            return 1;
        }
        /* the flash file is the terminal's whole map: one cut short (or
         * grown) is refused before anything opens it for writing */
        rc = otaup_simterm_map_size(&o, &map);
        if (rc < 0) {
            fprintf(stderr, "otaup-term: %s: its flash map (%s) is not usable: %s\n", flash, meta,
                    otaup_strerror(rc));
            return 1;
        }
        if (stat(flash, &st) != 0 || !S_ISREG(st.st_mode)) {
            fprintf(stderr, "otaup-term: %s: not a regular file; nothing done\n", flash);
            return 1;
        }
        if ((uint64_t)st.st_size != map) {
            fprintf(stderr,
                    "otaup-term: %s: the flash file is %lld bytes, its flash map %" PRIu32
                    " (%s); nothing done\n",
                    flash, (long long)st.st_size, map,
                    (uint64_t)st.st_size < map ? "truncated" : "longer than the map: not this terminal's flash");
            return 1;
        }
    }
    rc = otaup_simterm_new(&o, &t);
    if (rc < 0 || !otaup_simterm_provisioned(t)) {
        fprintf(stderr, "otaup-term: %s: not a terminal flash file (%s)\n", flash,
                rc == OTAUP_E_UNSUPPORTED && have_device_key ? "--device-key: this build cannot seal (no mbedTLS)"
                : rc < 0                                     ? otaup_strerror(rc)
                                                             : "identity missing or damaged");
        otaup_simterm_free(t);
        return 1;
    }
    k.t = t;
    k.tty = isatty(2) && !quiet;
    snprintf(from, sizeof from, "%s", otaup_simterm_version(t));
    (void)otaup_simterm_image_hash(t, from_hash);
    otaup_simflash_stats_get(otaup_simterm_flash(t), &fs0);
    for (i = 0; i < (int)otaup_simterm_sectors(t) && i < 4096; i++) {
        wear0[i] = otaup_simflash_wear(otaup_simterm_flash(t), (uint32_t)i);
    }
    start = mono_ms();
    retry_refused = reconnects > 0; /* --reconnect 0: no reconnection at all */
    for (;;) {
        otaup_apply *ap;
        uint64_t last_rx;
        int consent_sent = 0, closed = 0;
        {
            /* --timeout bounds the whole run, the attempts to connect too */
            uint64_t spent = mono_ms() - start, limit = (uint64_t)timeout_s * 1000u;
            rc = connect_to(server, &k.fd, spent < limit ? limit - spent : 1);
        }
        if (rc == -2) {
            fprintf(stderr, "otaup-term: --connect '%s': expected IPv4ADDR:PORT\n", server);
            otaup_simterm_free(t);
            return 2;
        }
        if (rc < 0) {
            int e = errno;
            int late = mono_ms() - start + 1000u > (uint64_t)timeout_s * 1000u;
            if (!late && reconnects-- > 0) {
                if (!quiet) {
                    fprintf(stderr, "otaup-term: cannot connect to %s (%s); trying again\n", server, strerror(e));
                }
                sleep(1);
                continue;
            }
            fprintf(stderr, "otaup-term: cannot connect to %s: %s%s\n", server, strerror(e),
                    late ? " (no time left: --timeout)" : "");
            if (!connected) {
                never_connected = 1;
            }
            break;
        }
        connected = 1;
        rc = otaup_simterm_boot(t, link_send, &k, clock_cb, NULL);
        if (rc < 0) {
            fprintf(stderr, "otaup-term: the applier refuses this flash: %s (%s)\n", otaup_strerror(rc),
                    otaup_errname(rc) ? otaup_errname(rc) : "?");
            close(k.fd);
            break;
        }
        if (cut_after) {
            otaup_simflash_cut_after(otaup_simterm_flash(t), cut_after, torn);
        }
        if (fail_after) {
            /* once per run: the operations of every connection count */
            otaup_simflash_fail_after(otaup_simterm_flash(t), fail_after, torn);
            fail_after = 0;
        }
        ap = otaup_simterm_apply(t);
        if (!quiet) {
            printf("otaup-term: %s (%s %s) connected to %s\n", otaup_simterm_id(t), otaup_simterm_model(t),
                   otaup_simterm_version(t), server);
            fflush(stdout);
        }
        (void)otaup_apply_connect(ap);
        last_rx = mono_ms();
        while (!closed) {
            struct pollfd p;
            uint8_t buf[16384];
            p.fd = k.fd;
            p.events = POLLIN | (k.wlen > 0 ? POLLOUT : 0);
            p.revents = 0;
            (void)poll(&p, 1, 10);
            if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t r = recv(k.fd, buf, sizeof buf, 0);
                if (r > 0) {
                    last_rx = mono_ms();
                    received(&k, buf, (size_t)r);
                } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    closed = 1;
                }
            }
            if (pump_queues(&k) < 0) {
                closed = 1;
            }
            if (otaup_apply_poll(ap) == OTAUP_E_RETRIES && !closed) {
                /* the server has not answered our frame through every
                 * retransmission: this link is dead to us. Drop it and
                 * connect again (the journal keeps the session), instead
                 * of waiting silent until the server's idle timeout */
                fprintf(stderr, "\notaup-term: no answer from the server to %d retransmissions\n",
                        OTAUP_APPLY_RETRIES);
                closed = 1;
            }
            otaup_simterm_step(t);
            bar(&k, 0);
            if (otaup_simflash_is_cut(otaup_simterm_flash(t))) {
                otaup_simflash_stats st;
                otaup_simflash_stats_get(otaup_simterm_flash(t), &st);
                bar(&k, 1);
                printf("otaup-term: POWER CUT after %lu flash write operations%s: the flash file keeps what "
                       "the cut left; run otaup-term again to resume\n",
                       cut_after, torn ? " (the last one torn)" : "");
                close(k.fd);
                otaup_simterm_free(t);
                return 3;
            }
            if (accept && !consent_sent && strstr(otaup_simterm_notice(t), "New software") != NULL &&
                otaup_apply_consent(ap, OTAUP_CONSENT_ACCEPT, 0) == 0) {
                consent_sent = 1;
            }
            if (otaup_apply_done(ap) && k.wlen == 0 && k.out.n == 0) {
                break; /* the RESULT was acknowledged */
            }
            if (mono_ms() - last_rx > (uint64_t)timeout_s * 1000u || mono_ms() - start > (uint64_t)timeout_s * 1000u) {
                /* --timeout bounds both the silence of the server and the whole run */
                if (mono_ms() - last_rx > (uint64_t)timeout_s * 1000u) {
                    fprintf(stderr, "\notaup-term: nothing from the server for %lu s (--timeout)\n", timeout_s);
                } else {
                    fprintf(stderr, "\notaup-term: the run took longer than --timeout %lu s\n", timeout_s);
                }
                closed = 1;
                reconnects = 0;
            }
        }
        close(k.fd);
        while (k.out.n > 0) {
            q_pop(&k.out);
        }
        /* what arrived before the close is still delivered */
        while (k.in.n > 0 && !otaup_simflash_is_cut(otaup_simterm_flash(t))) {
            (void)otaup_apply_feed(ap, k.in.f[0].p, k.in.f[0].n);
            q_pop(&k.in);
            otaup_simterm_step(t);
        }
        while (k.in.n > 0) {
            q_pop(&k.in);
        }
        /* and what the applier answered to them had no link to go out on: the
         * next connection must not start with acknowledgements of this one's frames */
        while (k.out.n > 0) {
            q_pop(&k.out);
        }
        k.wlen = k.acc_len = 0;
        if (otaup_apply_done(ap)) {
            result = otaup_apply_result(ap);
            break;
        }
        if (strstr(otaup_simterm_notice(t), "up to date") != NULL) {
            up_to_date = 1;
            result = 0;
            break;
        }
        if (strstr(otaup_simterm_notice(t), "not started") != NULL) {
            result = 0;
            break;
        }
        if (otaup_simterm_refused(t) != 0) {
            result = otaup_simterm_refused(t); /* a verdict, not a link fault: no retry */
            break;
        }
        if (npubs > 0 && strstr(otaup_simterm_notice(t), "signed updates only") != NULL) {
            fprintf(stderr, "\notaup-term: the server has no signed update for this terminal: \"%s\"\n",
                    otaup_simterm_notice(t));
            result = OTAUP_E_UNSIGNED; /* told by the server: no retry */
            break;
        }
        if (k.server_abort != 0 && !quiet) {
            fprintf(stderr, "\notaup-term: the server ended the session: %s (%s)\n", server_text(k.server_abort),
                    otaup_errname(k.server_abort) ? otaup_errname(k.server_abort) : "?");
        }
        if (k.server_abort == OTAUP_E_EXISTS && retry_refused &&
            mono_ms() - start + 2000u <= (uint64_t)timeout_s * 1000u) {
            /* refused as already connected: the session of this terminal's
             * previous connection is still live on the server (that link
             * went silent without closing). It ends on its own (its
             * retransmissions, at most the server's idle timeout): try
             * again every 2 s while --timeout allows, without spending
             * --reconnect, which the wait would use up in seconds */
            if (!quiet) {
                fprintf(stderr, "otaup-term: trying again in 2 s\n");
            }
            k.server_abort = 0;
            sleep(2);
            continue;
        }
        if (reconnects-- <= 0 || mono_ms() - start + 1000u > (uint64_t)timeout_s * 1000u) {
            fprintf(stderr, "\notaup-term: link closed before the upgrade completed%s\n",
                    reconnects >= 0 ? " (no time left: --timeout)" : "");
            if (k.server_abort != 0) {
                result = k.server_abort; /* the server's reason, not only "closed" */
            }
            break;
        }
        k.server_abort = 0;
        if (!quiet) {
            fprintf(stderr, "\notaup-term: link lost; reconnecting (the upgrade resumes)\n");
        }
        sleep(1);
    }
    bar(&k, 1);
    /* the summary */
    {
        uint8_t h[16];
        char hx[33];
        uint32_t size = otaup_simterm_image_hash(t, h), ss, slot_secs, erased = 0, n;
        int intact = otaup_simterm_user_intact(t);
        double secs = (double)(mono_ms() - start) / 1000.0;
        uint64_t full_us;
        otaup_simflash_stats_get(otaup_simterm_flash(t), &fs1);
        ss = otaup_simflash_flash(otaup_simterm_flash(t))->geo.runs[0].size;
        slot_secs = (size + ss - 1) / ss;
        n = otaup_simterm_sectors(t);
        for (i = 0; i < (int)n && i < 4096; i++) {
            uint32_t a = OTAUP_SIMTERM_BASE + (uint32_t)i * ss;
            int in_slot = (a >= otaup_simterm_slot_addr(t, 0) && a < otaup_simterm_slot_addr(t, 0) + otaup_simterm_slot_size(t)) ||
                          (otaup_simterm_slot_addr(t, 1) != 0 && a >= otaup_simterm_slot_addr(t, 1) &&
                           a < otaup_simterm_slot_addr(t, 1) + otaup_simterm_slot_size(t));
            if (in_slot && otaup_simflash_wear(otaup_simterm_flash(t), (uint32_t)i) != wear0[i]) {
                erased++;
            }
        }
        /* rewriting the whole image on the same flash: erase its sectors, program every byte
         * (simflash's default timing: 1 ms + 0.3 ms/KiB per erase, 10 ns/byte + 10 us per program) */
        full_us = (uint64_t)slot_secs * (1000u + 300u * ss / 1024u) + (uint64_t)size * 10u / 1000u +
                  (uint64_t)(size / 256u + 1u) * 10u;
        for (i = 0; i < 16; i++) {
            sprintf(hx + 2 * i, "%02x", h[15 - i]); /* XXH3-128, canonical: high half first, big-endian */
        }
        uint8_t kid[OTAUP_KEY_ID_LEN];
        char kidx[2 * OTAUP_KEY_ID_LEN + 1] = "";
        int signed_ok = otaup_simterm_signed_by(t, kid);
        if (signed_ok) {
            for (i = 0; i < (int)OTAUP_KEY_ID_LEN; i++) {
                sprintf(kidx + 2 * i, "%02x", kid[i]);
            }
        }
        /* upgraded: another version, or another image under the same version
         * (a terminal whose image did not match the version it reported) */
        int changed = strcmp(from, otaup_simterm_version(t)) != 0 || memcmp(from_hash, h, 16) != 0;
        if (result == 0 && !up_to_date && signed_ok && changed) {
            printf("otaup-term: %s: signature verified: manifest signed by trusted key %s, every step and the "
                   "final image checked against it; security counter now %u\n",
                   otaup_simterm_id(t), kidx, otaup_simterm_counter(t));
        }
        if (result != 0 && otaup_simterm_refused(t) != 0) {
            printf("otaup-term: %s: REFUSED the update before writing anything: %s (%s)\n", otaup_simterm_id(t),
                   refusal_text(otaup_simterm_refused(t)), otaup_errname(otaup_simterm_refused(t))
                                                               ? otaup_errname(otaup_simterm_refused(t))
                                                               : "?");
        }
        if (result == 0 && !up_to_date && changed) {
            uint64_t up = k.bytes_rx - k.restore_rx;
            printf("otaup-term: %s upgraded %s -> %s in %.1f s: received %llu bytes for a %u-byte image (%.1f %%)%s, "
                   "erased %u of %u image sectors, flash busy %.2f s (rewriting it all: %.2f s), personal data %s\n",
                   otaup_simterm_id(t), from, otaup_simterm_version(t), secs, (unsigned long long)up, size,
                   size ? 100.0 * (double)up / size : 0.0, k.restore_rx ? " + its personal data restored" : "",
                   erased, slot_secs, (double)(fs1.time_us - fs0.time_us) / 1e6, (double)full_us / 1e6,
                   intact ? "intact" : "DAMAGED");
        } else if (result == 0) {
            printf("otaup-term: %s runs %s: up to date (\"%s\")\n", otaup_simterm_id(t), otaup_simterm_version(t),
                   otaup_simterm_notice(t));
        } else {
            printf("otaup-term: %s: upgrade FAILED: %s (%s); still runs %s, personal data %s\n", otaup_simterm_id(t),
                   never_connected              ? "could not connect to the server"
                   : result == k.server_abort ? server_text(result)
                                              : otaup_strerror(result),
                   otaup_errname(result) ? otaup_errname(result) : "?",
                   otaup_simterm_version(t), intact ? "intact" : "DAMAGED");
        }
        if (report != NULL) {
            FILE *f = fopen(report, "w");
            if (f != NULL) {
                fprintf(f,
                        "result=%d\nfrom=%s\nversion=%s\nimage_hash=%s\nimage_size=%u\nbytes_rx=%llu\nrestore_rx=%llu\n"
                        "bytes_tx=%llu\n"
                        "frames_dropped=%llu\nsectors_erased=%u\nimage_sectors=%u\nslot_sectors=%u\n"
                        "flash_us=%llu\nfull_flash_us=%llu\nuser_intact=%d\nseconds=%.2f\n"
                        "signed=%d\nsigner=%s\nsecurity_counter=%u\nrefused=%d\nsealed=%d\n",
                        result, from, otaup_simterm_version(t), hx, size, (unsigned long long)k.bytes_rx,
                        (unsigned long long)k.restore_rx, (unsigned long long)k.bytes_tx, (unsigned long long)k.dropped, erased, slot_secs,
                        otaup_simterm_slot_size(t) / ss, (unsigned long long)(fs1.time_us - fs0.time_us),
                        (unsigned long long)full_us, intact, secs, signed_ok, kidx, otaup_simterm_counter(t),
                        otaup_simterm_refused(t), have_device_key);
            }
            if (f == NULL || ferror(f) || fclose(f) != 0) {
                fprintf(stderr, "otaup-term: --report %s: cannot write it: %s\n", report, strerror(errno));
                report_failed = 1;
            }
        }
        fflush(stdout);
    }
    free(k.wbuf);
    otaup_simterm_free(t);
    return result == 0 && !report_failed ? 0 : 1;
}
