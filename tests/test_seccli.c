/*
 * The key, sign and verify commands of the otaup tool, and apply --pub:
 * each success checked on its output files, each refusal with its exit
 * code, its message and no output written.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "otaup/features.h"

#if OTAUP_HAVE_MBEDTLS
static char dir[128];
static char tool[512];
static char out[16384];

static void setup(void)
{
    const char *bin = getenv("OTAUP_BIN_DIR");
    snprintf(dir, sizeof dir, "/tmp/otaup-seccli-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_ptr_nonnull(bin);
    snprintf(tool, sizeof tool, "%s/examples/otaup/otaup", bin);
}

static void teardown(void)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* run `otaup ARGS` in dir; capture stdout+stderr; return the exit code */
static int otaup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int otaup(const char *fmt, ...)
{
    char args[2048], full[3000];
    va_list ap;
    FILE *p;
    size_t n;
    int st;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "cd '%s' && timeout 60 '%s' %s 2>&1", dir, tool, args);
    p = popen(full, "r");
    ck_assert_ptr_nonnull(p);
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void put_file(const char *name, const unsigned char *p, size_t n)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static unsigned char *get_file(const char *name, size_t *n)
{
    char path[512];
    FILE *f;
    unsigned char *p;
    long l;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    l = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc((size_t)l + 1);
    ck_assert_uint_eq(fread(p, 1, (size_t)l, f), (size_t)l);
    fclose(f);
    *n = (size_t)l;
    return p;
}

static int exists(const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static size_t make_images(void)
{
    static unsigned char a[150000], b[150600];
    uint32_t x = 12345;
    size_t i;
    for (i = 0; i < sizeof a; i++) {
        x = x * 1103515245u + 12345u;
        a[i] = (unsigned char)(x >> 16);
    }
    memcpy(b, a, 4000);
    memcpy(b + 4000, "a new function", 14);
    memcpy(b + 4014, a + 4000, sizeof a - 4000);
    for (i = 4014 + sizeof a - 4000; i < sizeof b; i++) {
        b[i] = (unsigned char)i;
    }
    for (i = 0; i < sizeof b; i += 7001) {
        b[i] ^= 0x21;
    }
    put_file("old.bin", a, sizeof a);
    put_file("new.bin", b, sizeof b);
    return sizeof b;
}

static int same_files(const char *x, const char *y)
{
    size_t a, b;
    unsigned char *p = get_file(x, &a), *q = get_file(y, &b);
    int same = p != NULL && q != NULL && a == b && memcmp(p, q, a) == 0;
    free(p);
    free(q);
    return same;
}

START_TEST(test_keygen)
{
    size_t n;
    unsigned char *p;
    struct stat st;
    char path[512];
    ck_assert_int_eq(otaup("keygen -o k"), 0);
    ck_assert(exists("k") && exists("k.pub") && exists("k.pub.c"));
    snprintf(path, sizeof path, "%s/k", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 077, 0); /* the private key is private */
    p = get_file("k", &n);
    ck_assert_ptr_nonnull(strstr((char *)p, "PRIVATE KEY"));
    free(p);
    p = get_file("k.pub.c", &n);
    ck_assert_ptr_nonnull(strstr((char *)p, "const otaup_sec_key otaup_key_k = { {"));
    free(p);
    /* never overwritten by accident */
    ck_assert_int_eq(otaup("keygen -o k"), 1);
    ck_assert_ptr_nonnull(strstr(out, "exists"));
    ck_assert_int_eq(otaup("keygen -o k --force"), 0);
    ck_assert_int_eq(otaup("keygen"), 2);
    ck_assert_int_eq(otaup("keygen -o"), 2);
    ck_assert_msg(strstr(out, "-o needs a value") != NULL, "%s", out); /* not "unexpected argument" */
    ck_assert_int_eq(otaup("keygen -o nodir/k"), 1);
}
END_TEST

START_TEST(test_sign_verify_apply)
{
    size_t n;
    unsigned char *p;
    make_images();
    ck_assert_int_eq(otaup("keygen -o k"), 0);
    ck_assert_int_eq(otaup("keygen -o k2"), 0);
    ck_assert_int_eq(otaup("delta old.bin new.bin -o p.dlt --sign k --model m1 --version 2 --counter 3 -q"), 0);
    ck_assert_int_eq(otaup("verify --pub k.pub --old old.bin --new new.bin --model m1 --counter 3 p.dlt"), 0);
    ck_assert_ptr_nonnull(strstr(out, "steps verified"));
    ck_assert_ptr_nonnull(strstr(out, "model:       m1"));

    /* refusals */
    ck_assert_int_eq(otaup("verify --pub k2.pub p.dlt"), 1);
    ck_assert_ptr_nonnull(strstr(out, "OTAUP_E_KEY"));
    ck_assert_int_eq(otaup("verify --pub k.pub --model m2 p.dlt"), 1);
    ck_assert_ptr_nonnull(strstr(out, "OTAUP_E_MODEL"));
    ck_assert_int_eq(otaup("verify --pub k.pub --counter 4 p.dlt"), 1);
    ck_assert_ptr_nonnull(strstr(out, "OTAUP_E_ROLLBACK"));
    ck_assert_int_eq(otaup("verify --pub k.pub --old new.bin p.dlt"), 1);
    ck_assert_int_eq(otaup("verify --pub k.pub"), 2);
    ck_assert_int_eq(otaup("verify p.dlt"), 2);
    ck_assert_int_eq(otaup("verify --pub k.pub missing.dlt"), 1);

    /* a changed byte anywhere is refused */
    p = get_file("p.dlt", &n);
    {
        size_t offs[4] = { 20, 230, n / 2, n - 3 }, i;
        for (i = 0; i < 4; i++) {
            p[offs[i]] ^= 0x08;
            put_file("bad.dlt", p, n);
            ck_assert_msg(otaup("verify --pub k.pub bad.dlt") == 1, "flip at %zu accepted", offs[i]);
            ck_assert_msg(otaup("apply old.bin bad.dlt -o out.bin --pub k.pub") == 1, "apply: flip at %zu", offs[i]);
            ck_assert(!exists("out.bin"));
            p[offs[i]] ^= 0x08;
        }
    }
    free(p);

    /* apply with the terminal's checks */
    ck_assert_int_eq(otaup("apply old.bin p.dlt -o out.bin --pub k.pub --model m1 --counter 3"), 0);
    ck_assert(same_files("out.bin", "new.bin"));
    ck_assert_int_eq(otaup("apply old.bin p.dlt -o out2.bin --pub k2.pub"), 1);
    ck_assert_ptr_nonnull(strstr(out, "refused before any flash operation"));
    ck_assert(!exists("out2.bin"));
    ck_assert_int_eq(otaup("apply old.bin p.dlt -o out2.bin --pub k.pub --counter 4"), 1);
    ck_assert_ptr_nonnull(strstr(out, "OTAUP_E_ROLLBACK"));
    ck_assert_msg(strstr(strstr(out, "OTAUP_E_ROLLBACK") + 1, "OTAUP_E_ROLLBACK") == NULL, "said twice: %s", out);
    ck_assert_int_eq(otaup("apply old.bin p.dlt -o out2.bin --pub k.pub --model m2"), 1);
    ck_assert_int_eq(otaup("apply old.bin p.dlt -o out2.bin --pub k.pub --installed-version 3"), 1);
    ck_assert_ptr_nonnull(strstr(out, "OTAUP_E_OLDER"));
    ck_assert(!exists("out2.bin"));
    /* without --pub a signed delta still applies (the chain records are skipped) */
    ck_assert_int_eq(otaup("apply old.bin p.dlt -o out3.bin"), 0);
    ck_assert(same_files("out3.bin", "new.bin"));
    /* an unsigned delta with --pub: refused */
    ck_assert_int_eq(otaup("delta old.bin new.bin -o u.dlt -q"), 0);
    ck_assert_int_eq(otaup("apply old.bin u.dlt -o out4.bin --pub k.pub"), 1);
    ck_assert_ptr_nonnull(strstr(out, "OTAUP_E_UNSIGNED"));
    ck_assert_int_eq(otaup("verify --pub k.pub u.dlt"), 1);
    ck_assert_ptr_nonnull(strstr(out, "OTAUP_E_UNSIGNED"));
    /* a key file that cannot be read is a failure (1) for both, not a usage error */
    ck_assert_int_eq(otaup("verify --pub missing.pub p.dlt"), 1);
    ck_assert_int_eq(otaup("apply old.bin p.dlt -o out5.bin --pub missing.pub"), 1);
    ck_assert_ptr_nonnull(strstr(out, "missing.pub"));
    ck_assert(!exists("out5.bin"));
    /* numbers: decimal even with a leading 0, hex with 0x; no sign, no space */
    ck_assert_int_eq(otaup("apply old.bin p.dlt -o out5.bin --pub k.pub --model m1 --counter 03"), 0);
    ck_assert_int_eq(otaup("apply old.bin p.dlt -o out6.bin --pub k.pub --model m1 --counter 0x3"), 0);
    ck_assert_int_eq(otaup("apply old.bin p.dlt -o out6.bin --pub k.pub --counter ' 3'"), 2);
    ck_assert_int_eq(otaup("apply old.bin p.dlt -o out6.bin --pub k.pub --counter +3"), 2);

    /* on a simulated device, with a power cut and resume */
    ck_assert_int_eq(system("true"), 0);
    {
        size_t m;
        unsigned char *o = get_file("old.bin", &m);
        put_file("flash.bin", o, m);
        free(o);
    }
    ck_assert_int_eq(otaup("apply --flash flash.bin p.dlt --pub k.pub --cut-after 7 --torn"), 3);
    ck_assert_int_eq(otaup("apply --flash flash.bin p.dlt --pub k.pub"), 0);
    ck_assert(same_files("flash.bin", "new.bin"));
    /* resumed with --pub given the other way round from the run that began
     * it, past the point of no return (in place): the update is known by
     * its manifest with --pub, by its body without, so it cannot go on;
     * refused before any flash operation, saying how to finish ("session
     * id does not match", or that the source is not OLD, before) */
    {
        static const char *const pub[2] = { "--pub k.pub", "" };
        unsigned long ops;
        size_t m;
        unsigned char *o = get_file("old.bin", &m);
        int k;
        put_file("flash.bin", o, m);
        ck_assert_int_eq(otaup("apply --flash flash.bin p.dlt --stats"), 0);
        ck_assert_ptr_nonnull(strstr(out, "flash operations: "));
        ops = strtoul(strstr(out, "flash operations: ") + 18, NULL, 10);
        for (k = 0; k < 2; k++) {
            put_file("flash.bin", o, m);
            ck_assert_int_eq(otaup("apply --flash flash.bin p.dlt %s --cut-after %lu", pub[k], 2 * ops / 3), 3);
            ck_assert_int_eq(otaup("apply --flash flash.bin p.dlt %s", pub[!k]), 1);
            ck_assert_msg(strstr(out, "finish it as it began") != NULL && strstr(out, "--pub") != NULL, "%s", out);
            ck_assert_msg(otaup("apply --flash flash.bin p.dlt %s", pub[k]) == 0, "%s", out);
            ck_assert(same_files("flash.bin", "new.bin"));
        }
        free(o);
    }
}
END_TEST

START_TEST(test_sign_command)
{
    make_images();
    ck_assert_int_eq(otaup("keygen -o k"), 0);
    ck_assert_int_eq(otaup("keygen -o k2"), 0);
    ck_assert_int_eq(otaup("delta old.bin new.bin -o p.dlt -q"), 0);
    /* refusals first: nothing is written */
    ck_assert_int_eq(otaup("sign --key k p.dlt -o s.dlt"), 2);
    ck_assert_int_eq(otaup("sign --key k.pub --model m p.dlt -o s.dlt"), 1);
    ck_assert_ptr_nonnull(strstr(out, "cannot sign"));
    ck_assert_int_eq(otaup("sign --key k --model m --old new.bin --new new.bin p.dlt -o s.dlt"), 1);
    ck_assert_ptr_nonnull(strstr(out, "not the delta's source"));
    /* no source, or no target: a missing argument, a usage error (cli.md's
     * table), as a missing --model is; it was 1 (OTAUP_E_INVAL) */
    ck_assert_int_eq(otaup("sign --key k --model m --new new.bin p.dlt -o s.dlt"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--source-sha256 HEX or --no-source"));
    ck_assert_int_eq(otaup("sign --key k --model m --old old.bin p.dlt -o s.dlt"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--target-sha256 HEX"));
    ck_assert_int_eq(otaup("sign --key k --model m --no-source --new new.bin p.dlt -o s.dlt"), 1);
    ck_assert_int_eq(otaup("sign --key k --model m --tag-len 7 p.dlt -o s.dlt"), 2);
    ck_assert_int_eq(otaup("sign --key k --model m --source-sha256 12 p.dlt -o s.dlt"), 2);
    ck_assert(!exists("s.dlt"));
    /* sign, then a second signature by another key */
    ck_assert_int_eq(otaup("sign --key k --model m --old old.bin --new new.bin --tag-len 32 --note r2 p.dlt -o s.dlt"),
                     0);
    ck_assert_int_eq(otaup("verify --pub k.pub s.dlt"), 0);
    ck_assert_ptr_nonnull(strstr(out, "32-byte tags"));
    ck_assert_ptr_nonnull(strstr(out, "note:        r2"));
    /* an unknown option last is named as unknown, not as one lacking a value */
    ck_assert_int_eq(otaup("verify --pub k.pub s.dlt --bogus"), 2);
    ck_assert_msg(strstr(out, "unknown option '--bogus'") != NULL, "%s", out);
    ck_assert_int_eq(otaup("verify s.dlt --pub"), 2);
    ck_assert_msg(strstr(out, "--pub needs a value") != NULL, "%s", out);
    ck_assert_int_eq(otaup("verify --pub k2.pub s.dlt"), 1);
    /* signed already: its manifest cannot change, and a manifest option
     * is refused, not dropped without a word (it was exit 0) */
    ck_assert_int_eq(otaup("sign --key k2 --model other --version 5 s.dlt -o s3.dlt"), 2);
    ck_assert_msg(strstr(out, "signed already") != NULL && strstr(out, "without --model") != NULL, "%s", out);
    ck_assert_int_eq(otaup("sign --key k2 --old new.bin --new old.bin s.dlt -o s3.dlt"), 2);
    ck_assert_msg(strstr(out, "without --old") != NULL, "%s", out);
    ck_assert_int_eq(otaup("sign --key k2 --note x s.dlt"), 2);
    ck_assert(!exists("s3.dlt"));
    ck_assert_int_eq(otaup("verify --pub k2.pub s.dlt"), 1);
    ck_assert_int_eq(otaup("sign --key k2 s.dlt"), 0);
    ck_assert_ptr_nonnull(strstr(out, "signature added"));
    ck_assert_int_eq(otaup("verify --pub k2.pub s.dlt"), 0);
    ck_assert_ptr_nonnull(strstr(out, "2 signature(s)"));
    ck_assert_int_eq(otaup("verify --pub k.pub s.dlt"), 0);
    ck_assert_int_eq(otaup("apply old.bin s.dlt -o out.bin --pub k2.pub"), 0);
    ck_assert(same_files("out.bin", "new.bin"));
    /* a key that signed already adds no second entry: unchanged (to -o too) */
    ck_assert_int_eq(otaup("sign --key k2 s.dlt -o s2.dlt"), 0);
    ck_assert_msg(strstr(out, "already signed by key") != NULL && strstr(out, "(signature 2)") != NULL, "%s", out);
    ck_assert(same_files("s2.dlt", "s.dlt"));
    ck_assert_int_eq(otaup("sign --key k s.dlt"), 0);
    ck_assert_msg(strstr(out, "(signature 1); unchanged") != NULL, "%s", out);
    ck_assert(same_files("s2.dlt", "s.dlt"));
    ck_assert_int_eq(otaup("verify --pub k.pub s.dlt"), 0);
    ck_assert_ptr_nonnull(strstr(out, "2 signature(s)"));
    /* otaup delta --sign -q prints nothing (it printed the signing line) */
    ck_assert_int_eq(otaup("delta old.bin new.bin -o q.dlt --sign k --model m -q"), 0);
    ck_assert_msg(out[0] == 0, "%s", out);
    ck_assert_int_eq(otaup("verify --pub k.pub q.dlt"), 0);
    /* otaup delta --sign that cannot sign writes nothing (it left the
     * unsigned delta behind): from a block signature, which lacks OLD's
     * SHA-256, without --source-sha256; in place with --no-source */
    ck_assert_int_eq(otaup("sig old.bin -o old.sig"), 0);
    ck_assert_int_eq(otaup("delta --from-sig old.sig new.bin -o fs.dlt --mode ab --sign k --model m -q"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--source-sha256"));
    ck_assert(!exists("fs.dlt"));
    ck_assert_int_eq(otaup("delta --from-sig old.sig new.bin -o fs.dlt --sign k --model m --no-source -q"), 1);
    ck_assert(!exists("fs.dlt"));
    ck_assert_int_eq(otaup("delta old.bin new.bin -o np.dlt --sign k --model m --no-source -q"), 1);
    ck_assert(!exists("np.dlt"));
    /* A/B too: its compact PIECE records read OLD's bytes from the other
     * slot, so a manifest that names no source cannot cover it (it was
     * signed, "source: any") */
    ck_assert_int_eq(otaup("delta old.bin new.bin -o ab.dlt --mode ab -q"), 0);
    ck_assert_int_eq(otaup("sign --key k --model m --no-source --new new.bin ab.dlt -o abs.dlt"), 1);
    ck_assert(!exists("abs.dlt"));
    ck_assert_int_eq(otaup("delta old.bin new.bin -o abs.dlt --mode ab --sign k --model m --no-source -q"), 1);
    ck_assert(!exists("abs.dlt"));
    /* --sign without --model is a usage error found before planning: an
     * existing PATCH stays as it was (it was replaced, then removed) */
    put_file("keep.dlt", (const unsigned char *)"earlier", 7);
    ck_assert_int_eq(otaup("delta old.bin new.bin -o keep.dlt --sign k -q"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--model"));
    ck_assert_ptr_null(strstr(out, "not written"));
    {
        size_t n = 0;
        unsigned char *kept = get_file("keep.dlt", &n);
        ck_assert(kept != NULL && n == 7 && memcmp(kept, "earlier", 7) == 0);
        free(kept);
    }
    /* nor does a signing that fails after planning (here: in place with
     * --no-source): the delta is signed before anything is written */
    ck_assert_int_eq(otaup("delta old.bin new.bin -o keep.dlt --sign k --model m --no-source -q"), 1);
    ck_assert_ptr_nonnull(strstr(out, "not written"));
    {
        size_t n = 0;
        unsigned char *kept = get_file("keep.dlt", &n);
        ck_assert_msg(kept != NULL && n == 7 && memcmp(kept, "earlier", 7) == 0, "PATCH replaced or removed");
        free(kept);
    }
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("seccli");
    TCase *tc = tcase_create("cli");
    SRunner *sr;
    int failed;
#if OTAUP_HAVE_MBEDTLS
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_keygen);
    tcase_add_test(tc, test_sign_verify_apply);
    tcase_add_test(tc, test_sign_command);
#endif
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
