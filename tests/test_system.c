/*
 * The whole system over loopback TCP, with the real programs: otaupd,
 * otaupctl and otaup-term (the applier on a flash file). A clean upgrade
 * with the user's request; a power cut in the middle (otaup-term
 * --cut-after) and a second run that resumes; the server stopped and
 * restarted in the middle of a transfer; a lossy link; bad input to
 * otaup-term (missing files, wrong options, an id registered with another
 * model, a server that is not there; after the server's ABORT on a slow link
 * the next connection starts clean). Signed upgrades: a release signed at
 * publication (otaupctl release add --sign) taken by a terminal that
 * trusts the key (otaup-term --pub --require-signed) and refused, with
 * nothing written, by one that trusts another key; a release not signed
 * at publication refused, then signed on demand (otaupd --sign-key).
 * Every wait is bounded.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/e2e.h"
#include "util/runcmd.h"

static char dir[128];
static char ctl[512], dmn[512], term[512], cli[512];
static const char *daemon_args = "";
static char out[16384];
static int port;
static pid_t daemon_pid;

static void setup(void)
{
    const char *bin = getenv("OTAUP_BIN_DIR");
    ck_assert_ptr_nonnull(bin);
    snprintf(dir, sizeof dir, "/tmp/otaup-sys-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(ctl, sizeof ctl, "%s/examples/otaupctl/otaupctl --db r.db", bin);
    snprintf(dmn, sizeof dmn, "%s/examples/otaupd/otaupd", bin);
    snprintf(term, sizeof term, "%s/examples/otaup-term/otaup-term", bin);
    snprintf(cli, sizeof cli, "%s/examples/otaup/otaup", bin);
    port = test_free_port();
    daemon_pid = 0;
    daemon_args = "";
}

static void teardown(void)
{
    test_teardown_dir(dir, daemon_pid);
}

/* run a shell command in dir (bounded), capture stdout+stderr; return the exit code */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = test_vrun(dir, 60, out, sizeof out, fmt, ap);
    va_end(ap);
    return rc;
}

static void start_daemon(void)
{
    daemon_pid = test_start_otaupd(dir, dmn, port, daemon_args);
}

static int stop_daemon(int sig)
{
    int rc = test_stop_pid(daemon_pid, sig);
    daemon_pid = 0;
    return rc;
}

/* v1.bin and v2.bin: 120 KB images, v2 shifts everything after 10 % (a large delta) */
static void images(void)
{
    static uint8_t v1[120000], v2[130000];
    size_t n2;
    e2e_make_image(v1, sizeof v1, 5);
    memcpy(v2, v1, 12000);
    e2e_make_image(v2 + 12000, 700, 6);
    memcpy(v2 + 12700, v1 + 12000, sizeof v1 - 12000);
    n2 = sizeof v1 + 700;
    for (size_t i = 30000; i < n2; i += 997) {
        v2[i] ^= 0x21;
    }
    test_write_file(dir, "v1.bin", v1, sizeof v1);
    test_write_file(dir, "v2.bin", v2, n2);
}

static void publish_and_make(const char *id)
{
    ck_assert_int_eq(run("%s release add --model M1 --version 1.0 --build-time 1000 v1.bin", ctl), 0);
    ck_assert_int_eq(run("%s release add --model M1 --version 2.0 --build-time 2000 v2.bin", ctl), 0);
    ck_assert_int_eq(run("%s --flash %s.flash --init v1.bin --id %s --model M1 --version 1.0 --build-time 1000 "
                         "--slot-size 196608",
                         term, id, id),
                     0);
}

static const char *report_value(const char *file, const char *key)
{
    static char v[128];
    char path[300], line[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    v[0] = '\0';
    while (fgets(line, sizeof line, f) != NULL) {
        size_t k = strlen(key);
        if (strncmp(line, key, k) == 0 && line[k] == '=') {
            snprintf(v, sizeof v, "%s", line + k + 1);
            v[strcspn(v, "\n")] = '\0';
        }
    }
    fclose(f);
    return v;
}

static void check_report(const char *file)
{
    ck_assert_str_eq(report_value(file, "result"), "0");
    ck_assert_str_eq(report_value(file, "version"), "2.0");
    ck_assert_str_eq(report_value(file, "user_intact"), "1");
}

START_TEST(test_upgrade_over_tcp)
{
    images();
    publish_and_make("T1");
    start_daemon();
    /* the terminal accepts on its screen (CONSENT); the image check, backup, delta, restore */
    ck_assert_int_eq(run("%s --flash T1.flash --connect 127.0.0.1:%d --accept --damage-user-data --report r1 "
                         "--timeout 30 --quiet",
                         term, port),
                     0);
    ck_assert_ptr_nonnull(strstr(out, "upgraded 1.0 -> 2.0"));
    check_report("r1");
    ck_assert_int_eq(run("cmp -n $(stat -c %%s v2.bin) T1.flash v2.bin"), 0);
    ck_assert_int_eq(run("%s backups", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "0 backups"));
    ck_assert_int_eq(run("%s audit --terminal T1", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "restored"));
    ck_assert_ptr_nonnull(strstr(out, "backup-deleted"));
    /* next time: up to date */
    ck_assert_int_eq(run("%s --flash T1.flash --connect 127.0.0.1:%d --quiet", term, port), 0);
    ck_assert_ptr_nonnull(strstr(out, "up to date"));
    ck_assert_int_eq(stop_daemon(SIGTERM), 0);
}
END_TEST

START_TEST(test_power_cut_then_resume)
{
    images();
    publish_and_make("T2");
    start_daemon();
    ck_assert_int_eq(run("%s --flash T2.flash --connect 127.0.0.1:%d --accept --cut-after 9 --torn --quiet", term,
                         port),
                     3);
    ck_assert_ptr_nonnull(strstr(out, "POWER CUT"));
    ck_assert_int_eq(run("%s --flash T2.flash --connect 127.0.0.1:%d --accept --report r2 --timeout 30 --quiet", term,
                         port),
                     0);
    check_report("r2");
    ck_assert_int_eq(run("cmp -n $(stat -c %%s v2.bin) T2.flash v2.bin"), 0);
    ck_assert_int_eq(run("%s audit --terminal T2", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "resume"));
    ck_assert_int_eq(stop_daemon(SIGTERM), 0);
}
END_TEST

START_TEST(test_flash_error_over_tcp)
{
    /* the terminal's flash reports a write failed (torn, power on): it goes
     * on, the session resumes, one run ends upgraded with the data intact */
    images();
    publish_and_make("T6");
    start_daemon();
    ck_assert_int_eq(run("%s --flash T6.flash --connect 127.0.0.1:%d --accept --fail-after 10 --torn --report r6 "
                         "--timeout 30 --quiet",
                         term, port),
                     0);
    check_report("r6");
    ck_assert_int_eq(run("cmp -n $(stat -c %%s v2.bin) T6.flash v2.bin"), 0);
    ck_assert_int_eq(run("%s audit --terminal T6", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "flash program failed"));
    ck_assert_int_eq(stop_daemon(SIGTERM), 0);
}
END_TEST

START_TEST(test_server_restart_mid_transfer)
{
    pid_t tp;
    int st = -1, i;
    char cmd[1024];
    images();
    publish_and_make("T3");
    start_daemon();
    /* a slow, long link: small frames, a 300 ms round trip */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && exec timeout 120 %s --flash T3.flash --connect 127.0.0.1:%d --accept --frame 256 "
             "--window 4 --rtt 300 --reconnect 20 --report r3 --quiet >term.out 2>&1",
             dir, term, port);
    tp = fork();
    ck_assert_int_ge(tp, 0);
    if (tp == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 400; i++) { /* until the transfer runs */
        if (run("grep -q 'event=start' daemon.log") == 0) {
            break;
        }
        test_msleep(25);
    }
    ck_assert_int_lt(i, 400);
    test_msleep(400);
    ck_assert_int_eq(stop_daemon(SIGTERM), 0); /* sessions saved */
    ck_assert_int_eq(run("grep -c 'state=transfer' daemon.log"), 0);
    start_daemon();
    for (i = 0; i < 2400; i++) {
        if (waitpid(tp, &st, WNOHANG) == tp) {
            break;
        }
        test_msleep(50);
    }
    ck_assert_int_lt(i, 2400);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    check_report("r3");
    ck_assert_int_eq(run("cmp -n $(stat -c %%s v2.bin) T3.flash v2.bin"), 0);
    ck_assert_int_eq(run("%s audit --terminal T3", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "disconnected"));
    ck_assert_ptr_nonnull(strstr(out, "resume"));
    ck_assert_int_eq(stop_daemon(SIGTERM), 0);
}
END_TEST

START_TEST(test_lossy_link)
{
    images();
    publish_and_make("T4");
    daemon_args = "--rto-max 2000"; /* a link that loses frames without being congested */
    start_daemon();
    ck_assert_int_eq(run("%s --flash T4.flash --connect 127.0.0.1:%d --accept --drop 5 --corrupt 3 --duplicate 3 "
                         "--delay 5:200 --rtt 50 --seed 7 --report r4 --timeout 40 --quiet",
                         term, port),
                     0);
    check_report("r4");
    ck_assert_int_eq(run("cmp -n $(stat -c %%s v2.bin) T4.flash v2.bin"), 0);
    ck_assert_int_eq(stop_daemon(SIGTERM), 0);
}
END_TEST

/* A server that accepts the connection and never answers (a peer that
 * died with the socket open, a proxy that swallows the stream): the
 * terminal's HELLO goes unacknowledged through every retransmission, and
 * otaup-term then drops the link and connects again at once, instead of
 * staying silent until a timeout. The mute server counts its
 * connections. */
START_TEST(test_term_mute_server)
{
    int ls, one = 1, rc;
    struct sockaddr_in a;
    pid_t pid;
    char path[300];
    FILE *f;
    unsigned conns = 0;
    images();
    publish_and_make("T9");
    ls = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(ls, 0);
    (void)setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(ls, 4), 0);
    snprintf(path, sizeof path, "%s/conns", dir);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* the mute server: accept, never write, count (bounded: 60 s) */
        time_t end = time(NULL) + 60;
        unsigned n = 0;
        alarm(70);
        while (time(NULL) < end) {
            int c = accept(ls, NULL, NULL);
            if (c >= 0) {
                FILE *o = fopen(path, "w");
                n++;
                if (o != NULL) {
                    fprintf(o, "%u\n", n);
                    fclose(o);
                }
                /* keep c open: the terminal sees no close, only silence */
            }
        }
        _exit(0);
    }
    close(ls);
    rc = run("%s --flash T9.flash --connect 127.0.0.1:%d --reconnect 1 --timeout 50 --quiet", term, port);
    kill(pid, SIGKILL);
    (void)waitpid(pid, NULL, 0);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "no answer from the server") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "--timeout") == NULL, "it waited for its timeout: %s", out);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%u", &conns), 1);
    fclose(f);
    ck_assert_uint_eq(conns, 2); /* the first connection and the one reconnection */
}
END_TEST

START_TEST(test_term_bad_input)
{
    images();
    /* usage errors */
    ck_assert_int_eq(run("%s", term), 2);
    ck_assert_ptr_nonnull(strstr(out, "--flash"));
    ck_assert_int_eq(run("%s --flash x.flash --frob", term), 2);
    ck_assert_int_eq(run("%s --flash x.flash --drop 101", term), 2);
    /* frames below the protocol's 64 bytes: a usage error, not "not a terminal flash file" */
    ck_assert_int_eq(run("%s --flash x.flash --frame 63", term), 2);
    ck_assert_ptr_nonnull(strstr(out, "--frame (64..65536)"));
    ck_assert_int_eq(run("%s --flash x.flash --timeout 0", term), 2); /* would end every run at once */
    ck_assert_ptr_nonnull(strstr(out, "--timeout (1.."));
    ck_assert_int_eq(run("%s --flash x.flash --delay 5", term), 2);
    ck_assert_int_eq(run("%s --flash x.flash --init v1.bin --id T", term), 2);
    ck_assert_ptr_nonnull(strstr(out, "--init needs"));
    ck_assert_int_eq(run("%s --flash x.flash --init v1.bin --id T --model M --version 1 --build-time soon", term), 2);
    /* missing files */
    ck_assert_int_eq(run("%s --flash x.flash --init nope.bin --id T --model M --version 1 --build-time 1", term), 1);
    ck_assert_ptr_nonnull(strstr(out, "nope.bin"));
    ck_assert_int_eq(run("%s --flash nothing.flash --connect 127.0.0.1:%d", term, port), 1);
    ck_assert_ptr_nonnull(strstr(out, "no terminal there"));
    /* a flash file of the default map's size (otaup-term refuses one of another size first) */
    ck_assert_int_eq(run("head -c 1000 v1.bin > junk.flash && truncate -s 286720 junk.flash && "
                         "echo hi > junk.flash.meta"),
                     0);
    ck_assert_int_eq(run("%s --flash junk.flash --connect 127.0.0.1:%d", term, port), 1);
    ck_assert_ptr_nonnull(strstr(out, "not a terminal flash"));
    /* an image larger than its slot */
    ck_assert_int_eq(run("%s --flash x.flash --init v1.bin --id T --model M --version 1 --build-time 1 "
                         "--slot-size 65536",
                         term),
                     1);
    ck_assert_ptr_nonnull(strstr(out, "larger than the slot"));
    /* no server */
    ck_assert_int_eq(run("%s --flash x.flash --init v1.bin --id T --model M --version 1 --build-time 1 --quiet", term),
                     0);
    ck_assert_int_eq(run("%s --flash x.flash --connect 127.0.0.1:%d --reconnect 0 --quiet", term, port), 1);
    ck_assert_ptr_nonnull(strstr(out, "cannot connect"));
    ck_assert_int_eq(run("%s --flash x.flash --connect nowhere", term), 2);
    /* an id registered with another model: refused, the registry keeps the first */
    ck_assert_int_eq(run("%s release add --model M1 --version 1.0 --build-time 1000 v1.bin", ctl), 0);
    ck_assert_int_eq(run("%s --flash T5.flash --init v1.bin --id T5 --model M1 --version 1.0 --build-time 1000 "
                         "--quiet",
                         term),
                     0);
    start_daemon();
    ck_assert_int_eq(run("%s --flash T5.flash --connect 127.0.0.1:%d --quiet", term, port), 0);
    ck_assert_ptr_nonnull(strstr(out, "up to date"));
    ck_assert_int_eq(run("%s --flash y.flash --init v1.bin --id T5 --model M9 --version 1.0 --build-time 1000 "
                         "--quiet",
                         term),
                     0);
    ck_assert_int_eq(run("%s --flash y.flash --connect 127.0.0.1:%d --reconnect 0 --quiet", term, port), 1);
    ck_assert_ptr_nonnull(strstr(out, "FAILED"));
    ck_assert_ptr_nonnull(strstr(out, "OTAUP_E_MODEL")); /* the server's reason, not "link closed" */
    ck_assert_int_eq(run("%s terminals", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "M1"));
    ck_assert_ptr_null(strstr(out, "M9"));
    ck_assert_int_eq(run("grep -c 'was registered as model M1' daemon.log"), 0);
    /* on a slow link the server's ABORT is still on its way when the link
     * closes; what the terminal answers to it must not open its next
     * connection (the new session would take it for a protocol violation) */
    ck_assert_int_eq(run("%s --flash y.flash --connect 127.0.0.1:%d --rtt 100 --reconnect 1 --quiet", term, port), 1);
    ck_assert_int_eq(run("grep -c 'was registered as model M1' daemon.log"), 0);
    ck_assert_int_eq(atoi(out), 3);
    ck_assert_int_eq(run("grep -c 'never sent' daemon.log"), 1);
    ck_assert_int_eq(stop_daemon(SIGTERM), 0);
}
END_TEST

/* two signing key pairs: k1 (the manufacturer's), k2 (someone else's) */
static void keys(void)
{
    ck_assert_int_eq(run("%s keygen -o k1", cli), 0);
    ck_assert_int_eq(run("%s keygen -o k2", cli), 0);
}

static void make_term(const char *id)
{
    ck_assert_int_eq(run("%s --flash %s.flash --init v1.bin --id %s --model M1 --version 1.0 --build-time 1000 "
                         "--slot-size 196608 --quiet",
                         term, id, id),
                     0);
}

START_TEST(test_signed_upgrade_over_tcp)
{
    images();
    keys();
    ck_assert_int_eq(run("%s release add --model M1 --version 1.0 --build-time 1000 v1.bin", ctl), 0);
    make_term("S1");
    make_term("S2");
    start_daemon();
    /* S1 reports its image, so that publication can sign a delta for it */
    ck_assert_int_eq(run("%s --flash S1.flash --connect 127.0.0.1:%d --pub k1.pub --require-signed --quiet", term,
                         port),
                     0);
    ck_assert_ptr_nonnull(strstr(out, "up to date"));
    /* bad signing keys: nothing published */
    ck_assert_int_eq(run("%s release add --model M1 --version 2.0 --build-time 2000 --sign k1.pub v2.bin", ctl), 1);
    ck_assert_ptr_nonnull(strstr(out, "public key"));
    ck_assert_int_eq(run("%s release add --model M1 --version 2.0 --build-time 2000 --sign nokey v2.bin", ctl), 1);
    ck_assert_int_eq(run("%s releases", ctl), 0);
    ck_assert_ptr_null(strstr(out, "2.0"));
    ck_assert_int_eq(run("%s --flash S1.flash --require-signed", term), 2);
    ck_assert_ptr_nonnull(strstr(out, "--pub"));
    ck_assert_int_eq(run("%s --flash S1.flash --pub v1.bin", term), 2);
    /* published with its delta signed by k1 */
    ck_assert_int_eq(run("%s release add --model M1 --version 2.0 --build-time 2000 --sign k1 --counter 3 v2.bin",
                         ctl),
                     0);
    ck_assert_ptr_nonnull(strstr(out, "deltas signed: 1"));
    ck_assert_int_eq(run("%s release sign 2 --key k1", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "deltas signed: 0")); /* signed already */
    /* S2 trusts k2 only: refused before any flash write, reported to the server */
    ck_assert_int_eq(run("cp S2.flash S2.before"), 0);
    ck_assert_int_eq(run("%s --flash S2.flash --connect 127.0.0.1:%d --accept --pub k2.pub --require-signed "
                         "--report rs2 --timeout 30 --quiet",
                         term, port),
                     1);
    ck_assert_ptr_nonnull(strstr(out, "REFUSED the update before writing anything"));
    ck_assert_ptr_nonnull(strstr(out, "does not trust"));
    ck_assert_str_eq(report_value("rs2", "refused"), "-91");
    ck_assert_str_eq(report_value("rs2", "signed"), "0");
    ck_assert_str_eq(report_value("rs2", "version"), "1.0");
    ck_assert_int_eq(run("cmp S2.flash S2.before"), 0);
    ck_assert_int_eq(run("%s audit --terminal S2", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "failed"));
    ck_assert_ptr_nonnull(strstr(out, "refused the update before any flash write"));
    ck_assert_ptr_nonnull(strstr(out, "does not trust"));
    ck_assert_int_eq(run("grep -c 'terminal=S2 event=failed.*OTAUP_E_KEY' daemon.log"), 0);
    /* S1 trusts k1: the signature verifies, the counter is taken over */
    ck_assert_int_eq(run("%s --flash S1.flash --connect 127.0.0.1:%d --accept --pub k1.pub --require-signed "
                         "--report rs1 --timeout 30",
                         term, port),
                     0);
    ck_assert_ptr_nonnull(strstr(out, "signature verified"));
    check_report("rs1");
    ck_assert_str_eq(report_value("rs1", "signed"), "1");
    ck_assert_str_eq(report_value("rs1", "security_counter"), "3");
    ck_assert_uint_eq(strlen(report_value("rs1", "signer")), 16);
    ck_assert_int_eq(run("grep -q \"key id: $(sed -n 's/^signer=//p' rs1)\" k1.pub.c"), 0); /* k1's id */
    ck_assert_int_eq(run("cmp -n $(stat -c %%s v2.bin) S1.flash v2.bin"), 0);
    ck_assert_int_eq(run("%s audit --terminal S1", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "signed by key"));
    ck_assert_int_eq(stop_daemon(SIGTERM), 0);
}
END_TEST

START_TEST(test_signed_on_demand_over_tcp)
{
    images();
    keys();
    publish_and_make("U1"); /* 2.0 published unsigned */
    start_daemon();
    ck_assert_int_eq(run("cp U1.flash U1.before"), 0);
    /* no signed delta and no key on the server: refused by the server, nothing sent */
    ck_assert_int_eq(run("%s --flash U1.flash --connect 127.0.0.1:%d --accept --pub k1.pub --require-signed "
                         "--reconnect 3 --timeout 30 --quiet",
                         term, port),
                     1);
    ck_assert_ptr_nonnull(strstr(out, "no signed update for this terminal"));
    ck_assert_ptr_nonnull(strstr(out, "OTAUP_E_UNSIGNED"));
    ck_assert_ptr_null(strstr(out, "reconnecting"));
    ck_assert_int_eq(run("cmp U1.flash U1.before"), 0);
    ck_assert_int_eq(run("%s audit --terminal U1", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "takes signed updates only"));
    ck_assert_ptr_nonnull(strstr(out, "otaupctl release sign"));
    ck_assert_int_eq(stop_daemon(SIGTERM), 0);
    /* a public key cannot sign */
    ck_assert_int_eq(run("%s --db r.db --listen 127.0.0.1:%d --sign-key k1.pub", dmn, port), 1);
    ck_assert_ptr_nonnull(strstr(out, "public key"));
    daemon_args = "--sign-key k1";
    start_daemon();
    ck_assert_int_eq(run("%s --flash U1.flash --connect 127.0.0.1:%d --accept --pub k1.pub --require-signed "
                         "--report ru1 --timeout 30 --quiet",
                         term, port),
                     0);
    check_report("ru1");
    ck_assert_str_eq(report_value("ru1", "signed"), "1");
    ck_assert_int_eq(run("cmp -n $(stat -c %%s v2.bin) U1.flash v2.bin"), 0);
    ck_assert_int_eq(run("grep -c 'terminal=U1 event=delta signed on demand' daemon.log"), 0);
    ck_assert_int_eq(stop_daemon(SIGTERM), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("system");
    TCase *tc = tcase_create("tcp");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_upgrade_over_tcp);
    tcase_add_test(tc, test_power_cut_then_resume);
    tcase_add_test(tc, test_flash_error_over_tcp);
    tcase_add_test(tc, test_term_mute_server);
    tcase_add_test(tc, test_server_restart_mid_transfer);
    tcase_add_test(tc, test_lossy_link);
    tcase_add_test(tc, test_term_bad_input);
    tcase_add_test(tc, test_signed_upgrade_over_tcp);
    tcase_add_test(tc, test_signed_on_demand_over_tcp);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
