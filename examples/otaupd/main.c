/*
 * otaupd — the reference upgrade server (docs/server.md).
 *
 *   otaupd [--listen ADDR:PORT] [--db PATH] [--key PATH] [--window N]
 *          [--auto-request] [--restore-always] [--max-conns N] [--quiet]
 *          [--sign-key KEY]
 *
 * One thread, one epoll loop, one otaup_session per TCP connection, the
 * SQLite registry. SIGINT/SIGTERM/SIGHUP: every session saves its state (a
 * reconnect after a restart resumes), then the daemon exits 0.
 * Log: one line per event on stderr, key=value.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "otaup/error.h"
#include "otaup/features.h"
#include "otaup/registry.h"
#include "otaup/session.h"
#include "otaup/sign.h"

/* descriptors kept for other uses than connections (registry, log, epoll,
 * the listening socket, the delta provider's files) */
#define FD_RESERVE 32u
/* how long accept() rests after it ran out of descriptors or memory */
#define ACCEPT_PAUSE_MS 100u

struct conn {
    int fd;
    otaup_session *s;
    char peer[64];
    uint8_t *pend;      /* bytes the socket did not take yet */
    size_t pend_len, pend_off, pend_cap;
    struct conn *prev, *next;
};

static struct conn *conns; /* every live connection (timers, shutdown) */

static volatile sig_atomic_t stop_flag;
static int quiet;

/* One otaupd per registry. A session claims its terminal in the memory of
 * its own process (docs/server.md, "One session per terminal"): a second
 * daemon on the same file would not see those claims and would run a second
 * session for a terminal the first one is upgrading, on the same session
 * row and backup.
 * An exclusive flock(2) on the registry file itself (whatever path names
 * it), held until the process ends (the kernel drops it on SIGKILL too);
 * SQLite's own locks are fcntl(2) byte ranges, which flock does not touch.
 * The descriptor stays open: closing a descriptor of the database would
 * drop SQLite's fcntl locks of this process. */
static int lock_registry(const char *db)
{
    static int locked;
    int fd;
    if (locked) {
        return 0;
    }
    fd = open(db, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "otaupd: registry %s: %s\n", db, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            fprintf(stderr,
                    "otaupd: registry %s is served by another otaupd already (it holds the registry's lock): "
                    "run one otaupd per registry, or stop that one first\n",
                    db);
        } else {
            fprintf(stderr, "otaupd: registry %s: cannot lock it: %s\n", db, strerror(e));
        }
        close(fd);
        return -1;
    }
    locked = 1;
    return 0; /* fd kept open on purpose until exit */
}

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void logline(const char *level, const char *terminal, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void logline(const char *level, const char *terminal, const char *event, const char *fmt, ...)
{
    char ts[40], msg[512];
    struct timespec t;
    struct tm tm;
    va_list ap;
    if (quiet && strcmp(level, "error") != 0 && strcmp(level, "warn") != 0) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &t);
    gmtime_r(&t.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "ts=%s.%03ldZ level=%s terminal=%s event=%s %s\n", ts, t.tv_nsec / 1000000L, level,
            terminal && *terminal ? terminal : "-", event, msg);
}

static void session_log(int level, const char *terminal, const char *event, const char *msg, void *p)
{
    static const char *const names[] = { "error", "warn", "info", "debug" };
    (void)p;
    if (level > OTAUP_LOG_INFO) {
        return;
    }
    logline(names[level < 0 ? 0 : level], terminal, event, "%s", msg);
}

static int parse_listen(const char *s, struct sockaddr_in *a)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    char *end;
    long port;
    if (colon == NULL || (size_t)(colon - s) >= sizeof host) {
        return -1;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    /* digits only: an empty port is not port 0 (any free port, which
     * nobody could connect to unless told: see the listen line) */
    if (colon[1] < '0' || colon[1] > '9') {
        return -1;
    }
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535) {
        return -1;
    }
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (host[0] == '\0' || strcmp(host, "localhost") == 0) {
        snprintf(host, sizeof host, "127.0.0.1");
    }
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: otaupd [--listen ADDR:PORT] [--db PATH] [--key PATH] [--window N]\n"
               "              [--auto-request] [--restore-always] [--max-conns N] [--quiet]\n"
               "              [--sign-key KEY] [--rto-max MS]\n"
               "defaults: --listen 127.0.0.1:7070 --db $OTAUP_DB or otaup.db --key DB.key (created, mode 0600)\n"
               "--sign-key KEY: sign on demand, with the private key KEY, the deltas that terminals\n"
               "               taking signed updates only need and that were not signed at publication\n"
               "--rto-max MS: ceiling of the retransmission timeout, which doubles at each timeout in a\n"
               "               row, once the terminal is silent that long (default 30000; 1000..600000);\n"
               "               lower it for links that lose frames without being congested\n");
}

static otaup_key *sign_key; /* --sign-key: freed (wiped) at exit */

static void free_sign_key(void)
{
#if OTAUP_HAVE_MBEDTLS
    otaup_key_free(sign_key);
#endif
    sign_key = NULL;
}

/* The on-demand signing key (PEM, as `otaup keygen` writes it). NULL and a message on failure. */
static otaup_key *load_sign_key(const char *path)
{
#if OTAUP_HAVE_MBEDTLS
    FILE *f = fopen(path, "rb");
    uint8_t buf[4096];
    size_t n;
    otaup_key *k = NULL;
    int rc;
    if (f == NULL) {
        fprintf(stderr, "otaupd: --sign-key %s: %s\n", path, strerror(errno));
        return NULL;
    }
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    rc = n == sizeof buf ? OTAUP_E_KEY : otaup_key_parse(buf, n, &k);
    memset(buf, 0, sizeof buf);
    if (rc != 0) {
        fprintf(stderr, "otaupd: --sign-key %s: not an ECDSA P-256 key (%s)\n", path, otaup_strerror(rc));
        return NULL;
    }
    if (!otaup_key_has_private(k)) {
        fprintf(stderr, "otaupd: --sign-key %s is a public key: signing needs the private key\n", path);
        otaup_key_free(k);
        return NULL;
    }
    return k;
#else
    fprintf(stderr, "otaupd: --sign-key %s: this build has no mbedTLS, so it cannot sign\n", path);
    return NULL;
#endif
}

static void close_conn(int ep, struct conn *c, uint64_t now, const char *why)
{
    const char *term = otaup_session_terminal(c->s);
    otaup_session_closed(c->s, now);
    logline("info", term, "close", "peer=%s reason=\"%s\" state=%s result=%s", c->peer, why,
            otaup_session_state_name(otaup_session_get_state(c->s)),
            otaup_session_result(c->s) ? otaup_errname(otaup_session_result(c->s)) : "ok");
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    otaup_session_free(c->s);
    free(c->pend);
    free(c);
}

/* Why flush_out() gave up (the close reason in the log). */
static char flush_why[160];

/* Move the session's bytes to the socket. Returns 0, or -1 when the
 * connection must close (flush_why says why). Bytes the socket does not
 * take wait in c->pend and EPOLLOUT is armed until they are gone. */
static int flush_out(int ep, struct conn *c, uint64_t now)
{
    uint8_t buf[16384];
    struct epoll_event ev;
    while (c->pend_off < c->pend_len) {
        ssize_t w = send(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0; /* EPOLLOUT is armed */
        }
        if (w <= 0) {
            snprintf(flush_why, sizeof flush_why, "write failed: %s", w < 0 ? strerror(errno) : "nothing written");
            return -1;
        }
        c->pend_off += (size_t)w;
    }
    for (;;) {
        int n = otaup_session_read(c->s, buf, sizeof buf, now);
        ssize_t w;
        if (n < 0) {
            int res = otaup_session_result(c->s);
            snprintf(flush_why, sizeof flush_why, "%s", otaup_strerror(res != 0 ? res : n));
            return -1;
        }
        if (n == 0) {
            break;
        }
        w = send(c->fd, buf, (size_t)n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            int res = otaup_session_result(c->s);
            /* a peer that hung up after a session failed: name the failure */
            snprintf(flush_why, sizeof flush_why, "write failed: %s%s%s", strerror(errno),
                     res != 0 ? "; session: " : "", res != 0 ? otaup_strerror(res) : "");
            return -1;
        }
        if (w == n) {
            continue;
        }
        /* the socket is full: keep the rest (only what is left) until EPOLLOUT */
        w = w < 0 ? 0 : w;
        if (c->pend_cap < (size_t)(n - w)) {
            uint8_t *p = realloc(c->pend, (size_t)(n - w));
            if (p == NULL) {
                snprintf(flush_why, sizeof flush_why, "out of memory for %d bytes waiting to be sent", n - (int)w);
                return -1;
            }
            c->pend = p;
            c->pend_cap = (size_t)(n - w);
        }
        memcpy(c->pend, buf + w, (size_t)(n - w));
        c->pend_len = (size_t)(n - w);
        c->pend_off = 0;
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return 0;
    }
    if (c->pend != NULL) {
        free(c->pend); /* nothing waits: give the memory back */
        c->pend = NULL;
        c->pend_cap = c->pend_len = c->pend_off = 0;
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *listen_s = "127.0.0.1:7070", *db = "otaup.db", *keyp = NULL, *sign_path = NULL;
    char keybuf[512], err[256] = "";
    uint8_t key[OTAUP_REG_KEY_LEN];
    struct sockaddr_in addr;
    otaup_registry_options ro;
    otaup_registry *reg = NULL;
    otaup_session_options so;
    otaup_delta_cache *cache = NULL;
    struct epoll_event ev, evs[256];
    unsigned max_conns = 20000, nconns = 0, window = 0, rto_max = 0;
    uint64_t accept_paused_until = 0; /* accept() ran out of descriptors or memory: not before */
    uint64_t accept_logged = 0;       /* when that was last logged */
    uint64_t last_timers = 0;
    int auto_req = 0, restore_always = 0;
    int lfd, ep, i, rc, one = 1, wait_failed = 0, key_existed;
    /* the same registry otaupctl opens by default */
    if (getenv("OTAUP_DB") != NULL && getenv("OTAUP_DB")[0] != '\0') {
        db = getenv("OTAUP_DB");
    }
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen_s = argv[++i];
        } else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            db = argv[++i];
        } else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            keyp = argv[++i];
        } else if (strcmp(argv[i], "--sign-key") == 0 && i + 1 < argc) {
            sign_path = argv[++i];
        } else if ((strcmp(argv[i], "--window") == 0 || strcmp(argv[i], "--max-conns") == 0 ||
                    strcmp(argv[i], "--rto-max") == 0) &&
                   i + 1 < argc) {
            /* a number, at least 1: a typo must not turn into "no window" or "refuse everyone" */
            const char *opt = argv[i], *val = argv[++i];
            int is_rto = strcmp(opt, "--rto-max") == 0;
            unsigned long min = is_rto ? 1000ul : 1ul;
            unsigned long max = strcmp(opt, "--window") == 0 ? 65535ul : is_rto ? 600000ul : 1000000ul, v;
            char *end;
            errno = 0;
            v = strtoul(val, &end, 10);
            if (errno != 0 || *end != '\0' || val[0] < '0' || val[0] > '9' || v < min || v > max) {
                fprintf(stderr, "otaupd: bad value '%s' for %s (%lu..%lu)\n", val, opt, min, max);
                return 2;
            }
            if (is_rto) {
                rto_max = (unsigned)v;
            } else if (strcmp(opt, "--window") == 0) {
                window = (unsigned)v;
            } else {
                max_conns = (unsigned)v;
            }
        } else if (strcmp(argv[i], "--auto-request") == 0) {
            auto_req = 1;
        } else if (strcmp(argv[i], "--restore-always") == 0) {
            restore_always = 1;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            quiet = 1;
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "otaupd: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (parse_listen(listen_s, &addr) != 0) {
        fprintf(stderr, "otaupd: --listen '%s': expected IPv4ADDR:PORT\n", listen_s);
        return 2;
    }
    if (sign_path != NULL && (sign_key = load_sign_key(sign_path)) == NULL) {
        return 1;
    }
    atexit(free_sign_key);
    if (keyp == NULL) {
        snprintf(keybuf, sizeof keybuf, "%s.key", db);
        keyp = keybuf;
    }
    /* a registry that exists is locked before its key file is read or
     * made: a second daemon leaves nothing behind (a new key file beside
     * another path to the file); a new one is locked once SQLite made it */
    if (access(db, F_OK) == 0 && lock_registry(db) != 0) {
        return 1;
    }
    key_existed = access(keyp, F_OK) == 0;
    rc = otaup_registry_keyfile(keyp, 1, key);
    if (rc < 0) {
        fprintf(stderr, "otaupd: master key %s: %s%s\n", keyp, otaup_strerror(rc),
                rc == OTAUP_E_KEY ? " (must be 64 hex digits, mode 0600)" : "");
        return 1;
    }
    otaup_registry_options_init(&ro);
    ro.master_key = key;
    ro.errbuf = err;
    ro.errbuf_len = sizeof err;
    rc = otaup_registry_sqlite_open(db, &ro, &reg);
    if (rc < 0) {
        fprintf(stderr, "otaupd: registry %s: %s%s%s\n", db, otaup_strerror(rc), err[0] ? ": " : "", err);
        return 1;
    }
    if (access(db, W_OK) != 0) {
        /* SQLite opens a file it may not write read-only, without a word:
         * every session would then fail at its first step (recording the
         * terminal) with "attempt to write a readonly database" */
        fprintf(stderr, "otaupd: registry %s: %s: the daemon records every terminal, it needs to write it\n", db,
                strerror(errno));
        otaup_registry_free(reg);
        return 1;
    }
    if (lock_registry(db) != 0) {
        otaup_registry_free(reg);
        return 1;
    }
    {
        /* a master key that is not this registry's (another --key, or a
         * key file created just now beside another path to the file)
         * would make every backup held undecryptable: a session needing
         * a restore would fail, and new backups would be wrapped under a
         * key the next start with the right one cannot read */
        char who[OTAUP_REG_ID_MAX];
        rc = otaup_registry_key_check(reg, who, sizeof who);
        if (rc < 0) {
            if (rc == OTAUP_E_KEY) {
                fprintf(stderr,
                        "otaupd: master key %s is not the key of registry %s: it does not unwrap the backup key "
                        "of terminal %s (nor of any terminal holding a backup); start it with that registry's "
                        "key file (--key)%s\n",
                        keyp, db, who, key_existed ? "" : "; the key file made now was removed");
            } else {
                fprintf(stderr, "otaupd: registry %s: checking the master key: %s%s%s\n", db, otaup_strerror(rc),
                        err[0] ? ": " : "", err);
            }
            if (!key_existed) {
                unlink(keyp);
            }
            otaup_registry_free(reg);
            return 1;
        }
    }
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd >= 0) {
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    }
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 1024) != 0) {
        fprintf(stderr, "otaupd: cannot listen on %s: %s\n", listen_s, strerror(errno));
        otaup_registry_free(reg);
        return 1;
    }
    {
        /* a connection takes one descriptor: stay below the open-file
         * limit (the registry, the log and epoll take a few more), so that
         * the connections beyond it are refused one by one instead of
         * failing accept() with EMFILE */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            (rlim_t)max_conns + FD_RESERVE > rl.rlim_cur) {
            unsigned lim = rl.rlim_cur > FD_RESERVE + 1u ? (unsigned)(rl.rlim_cur - FD_RESERVE) : 1u;
            logline("warn", NULL, "limit", "max_conns=%u instead of %u: the open-file limit is %llu", lim, max_conns,
                    (unsigned long long)rl.rlim_cur);
            max_conns = lim;
        }
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal); /* its terminal closed: stop as cleanly */
    signal(SIGPIPE, SIG_IGN);
    /* a file-size limit (ulimit -f) reached by the registry or its WAL:
     * the write fails (EFBIG), the registry reports it and the session
     * fails with the reason, instead of the whole daemon being killed
     * with every session unsaved */
    signal(SIGXFSZ, SIG_IGN);
    if (otaup_delta_cache_new(0, &cache) < 0) {
        fprintf(stderr, "otaupd: out of memory\n");
        otaup_registry_free(reg);
        return 1;
    }
    otaup_session_options_init(&so);
    so.reg = reg;
    so.cache = cache; /* one copy of each delta, shared by the sessions sending it */
    so.log = session_log;
    so.auto_request = auto_req;
    so.restore_always = restore_always;
    so.window_frames = window;
    so.rto_max_ms = rto_max;
    so.sign_key = sign_key;
    {
        /* the address bound, so that port 0 (any free port) says which one */
        struct sockaddr_in b;
        socklen_t bl = sizeof b;
        char ip[32] = "?";
        if (getsockname(lfd, (struct sockaddr *)&b, &bl) != 0) {
            b = addr;
        }
        inet_ntop(AF_INET, &b.sin_addr, ip, sizeof ip);
        logline("info", NULL, "listen", "addr=%s:%u db=%s key=%s%s%s", ip, (unsigned)ntohs(b.sin_port), db, keyp,
                sign_path ? " sign_key=" : "", sign_path ? sign_path : "");
    }

    while (!stop_flag) {
        int n = epoll_wait(ep, evs, 256, 50);
        uint64_t now = now_ms();
        if (n < 0 && errno != EINTR) {
            logline("error", NULL, "epoll", "epoll_wait: %s", strerror(errno));
            wait_failed = 1;
            break;
        }
        if (accept_paused_until != 0 && now >= accept_paused_until) {
            ev.events = EPOLLIN;
            ev.data.ptr = NULL;
            epoll_ctl(ep, EPOLL_CTL_MOD, lfd, &ev);
            accept_paused_until = 0;
        }
        for (i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {
                for (;;) {
                    struct sockaddr_in pa;
                    socklen_t pl = sizeof pa;
                    int fd = accept4(lfd, (struct sockaddr *)&pa, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    char ip[32];
                    if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                            /* the connection stays queued and the listening
                             * socket readable: stop watching it a while
                             * instead of spinning on it */
                            if (now - accept_logged >= 1000) { /* a line a second at most */
                                logline("warn", NULL, "accept-paused", "reason=\"%s\" conns=%u for_ms=%u",
                                        strerror(errno), nconns, ACCEPT_PAUSE_MS);
                                accept_logged = now;
                            }
                            ev.events = 0;
                            ev.data.ptr = NULL;
                            epoll_ctl(ep, EPOLL_CTL_MOD, lfd, &ev);
                            accept_paused_until = now + ACCEPT_PAUSE_MS;
                        }
                        break;
                    }
                    if (nconns >= max_conns) {
                        close(fd);
                        logline("warn", NULL, "refused", "reason=max-conns");
                        continue;
                    }
                    c = calloc(1, sizeof *c);
                    if (c == NULL || otaup_session_new(&so, &c->s) < 0) {
                        free(c);
                        close(fd);
                        continue;
                    }
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c->fd = fd;
                    c->next = conns;
                    if (conns != NULL) {
                        conns->prev = c;
                    }
                    conns = c;
                    inet_ntop(AF_INET, &pa.sin_addr, ip, sizeof ip);
                    snprintf(c->peer, sizeof c->peer, "%s:%u", ip, ntohs(pa.sin_port));
                    ev.events = EPOLLIN | EPOLLRDHUP;
                    ev.data.ptr = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                    nconns++;
                    logline("info", NULL, "accept", "peer=%s conns=%u", c->peer, nconns);
                }
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                if (flush_out(ep, c, now) < 0) {
                    close_conn(ep, c, now, flush_why);
                    nconns--;
                    continue;
                }
            }
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                uint8_t buf[65536];
                ssize_t r = recv(c->fd, buf, sizeof buf, 0);
                if (r > 0) {
                    rc = otaup_session_feed(c->s, buf, (size_t)r, now);
                    if (flush_out(ep, c, now) < 0) {
                        close_conn(ep, c, now, flush_why);
                        nconns--;
                        continue;
                    }
                } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    close_conn(ep, c, now, r == 0 ? "peer closed" : strerror(errno));
                    nconns--;
                    continue;
                }
            }
            if (otaup_session_finished(c->s) && c->pend_off >= c->pend_len) {
                close_conn(ep, c, now, otaup_session_result(c->s) ? otaup_strerror(otaup_session_result(c->s))
                                                                  : "session over");
                nconns--;
            }
        }
        /* timers: every 10 ms at most (one pass over the connections) */
        if (now - last_timers >= 10) {
            struct conn *c = conns, *nx;
            last_timers = now;
            for (; c != NULL; c = nx) {
                nx = c->next;
                if (otaup_session_deadline(c->s) <= now) {
                    otaup_session_poll(c->s, now);
                    int fr = flush_out(ep, c, now);
                    if (fr < 0 || (otaup_session_finished(c->s) && c->pend_off >= c->pend_len)) {
                        int res = otaup_session_result(c->s);
                        close_conn(ep, c, now,
                                   fr < 0 ? flush_why : res != 0 ? otaup_strerror(res) : "session over");
                        nconns--;
                    }
                }
            }
        }
    }
    logline("info", NULL, "shutdown", "%s: saving %u session(s)", wait_failed ? "cannot wait for events" : "signal received",
            nconns);
    while (conns != NULL) {
        close_conn(ep, conns, now_ms(), "server shutdown (resumable)");
    }
    close(lfd);
    close(ep);
    otaup_delta_cache_free(cache);
    otaup_registry_free(reg);
    memset(key, 0, sizeof key);
    logline("info", NULL, "stopped", wait_failed ? "after an error" : "ok");
    return wait_failed ? 1 : 0;
}
