/*
 * The otaup tool as a new user meets it, following README.md and
 * docs/cli.md literally:
 *
 * - a command given without what it needs (no -o, no NEW, no PATCH, no
 *   --key, no --pub) says what is missing before its usage, exit 2 and
 *   nothing written; the usage alone left the user to guess;
 * - otaup verify takes -q as every other command does; otaup help
 *   COMMAND is COMMAND's --help (it printed the list of commands);
 * - otaup apply --flash --pub on a FLASH that holds the new image already
 *   refuses a delta the terminal would refuse (unsigned, signed by no
 *   trusted key, for another model, a lower security counter) instead of
 *   "already holds the new image", exit 0;
 * - otaup keygen -o public (or sign, id, ...) made a KEY.pub.c that
 *   declared otaup_key_public again, which does not compile;
 * - otaup delta notes an empty NEW, and a NEW that OLD holds already
 *   (planned as asked, exit 0, but most likely the wrong file);
 * - the README's walk: delta, inspect, apply to a file, a torn power cut
 *   (exit 3) resumed without --cut-after, --stats, FLASH equal to NEW
 *   byte for byte (in place), and A/B: NEW in its slot at the end of
 *   FLASH, OLD kept before it; A/B back to the slot at 0, and a FLASH
 *   without OLD told where OLD was looked for.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otaup/features.h"
#include "util/runcmd.h"

static char dir[128], cli[512], out[16384];
static uint8_t old_img[30000], new_img[31000];

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

static int has(const char *s)
{
    return strstr(out, s) != NULL;
}

static int exists(const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static void setup(void)
{
    const char *bin = getenv("OTAUP_BIN_DIR");
    size_t i;
    uint32_t x = 777;
    ck_assert_ptr_nonnull(bin);
    snprintf(dir, sizeof dir, "/tmp/otaup-cliwalk-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(cli, sizeof cli, "%s/examples/otaup/otaup", bin);
    for (i = 0; i < sizeof old_img; i++) {
        x = x * 1103515245u + 12345u;
        old_img[i] = (uint8_t)(x >> 16);
    }
    memcpy(new_img, old_img, sizeof old_img);
    for (i = 100; i < sizeof new_img; i += 2500) {
        new_img[i] ^= 0xA5;
    }
    for (i = sizeof old_img; i < sizeof new_img; i++) {
        new_img[i] = (uint8_t)(i * 11u);
    }
    test_write_file(dir, "old.bin", old_img, sizeof old_img);
    test_write_file(dir, "new.bin", new_img, sizeof new_img);
}

static void teardown(void)
{
    test_teardown_dir(dir, 0);
}

/* what is missing is named, then the usage; exit 2, no file written */
START_TEST(test_missing_argument_named)
{
    static const char *const cases[][2] = {
        { "delta old.bin new.bin", "-o PATCH is missing" },
        { "delta old.bin -o x.otd", "NEW is missing" },
        { "delta -o x.otd", "OLD and NEW are missing" },
        { "delta --from-sig old.sig -o x.otd", "NEW is missing" },
        { "delta --from-sig old.sig old.bin new.bin -o x.otd", "--from-sig SIG stands for OLD" },
        { "inspect", "PATCH (or SIG) is missing" },
        { "inspect --json", "PATCH (or SIG) is missing" },
        { "sig", "IMAGE is missing" },
        { "sig -o x.otd", "IMAGE is missing" },
        { "keygen", "-o KEY is missing" },
        { "keygen --force", "-o KEY is missing" },
#if OTAUP_HAVE_MBEDTLS /* without it, sign and verify only say so */
        { "sign x.otd", "--key KEY is missing" },
        { "sign --key x.key", "PATCH is missing" },
        { "verify x.otd", "--pub PUB is missing" },
#endif
    };
    unsigned k;
    ck_assert_int_eq(run("%s sig old.bin -o old.sig -q", cli), 0);
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int rc = run("%s %s", cli, cases[k][0]);
        ck_assert_msg(rc == 2, "%s: exit %d: %s", cases[k][0], rc, out);
        ck_assert_msg(has(cases[k][1]) && has("usage: otaup"), "%s: %s", cases[k][0], out);
        ck_assert_msg(strstr(out, cases[k][1]) < strstr(out, "usage: otaup"), "%s: message after the usage: %s",
                      cases[k][0], out);
        ck_assert(!exists("x.otd") && !exists("x.key"));
    }
#if OTAUP_HAVE_MBEDTLS
    ck_assert_int_eq(run("%s keygen -o k", cli), 0);
    ck_assert_int_eq(run("%s verify --pub k.pub", cli), 2);
    ck_assert_msg(has("PATCH is missing") && has("usage: otaup verify"), "%s", out);
#endif
}
END_TEST

/* an empty NEW, or one OLD holds already, is planned with a note (even
 * with -q): most likely the wrong file */
START_TEST(test_delta_notes)
{
    ck_assert_int_eq(run("touch empty.bin && %s delta old.bin empty.bin -o e.otd -q", cli), 0);
    ck_assert_msg(has("NEW (empty.bin) is empty") && has("OLD's bytes stay"), "%s", out);
    ck_assert_int_eq(run("%s apply old.bin e.otd -o e.out && test ! -s e.out", cli), 0);
    ck_assert_int_eq(run("%s delta old.bin empty.bin -o e2.otd --mode ab", cli), 0);
    ck_assert_msg(has("NEW (empty.bin) is empty") && !has("OLD's bytes stay"), "%s", out);
    ck_assert_int_eq(run("%s delta old.bin old.bin -o same.otd -q", cli), 0);
    ck_assert_msg(has("the delta changes nothing"), "%s", out);
    ck_assert_int_eq(run("%s apply old.bin same.otd -o same.out && cmp same.out old.bin", cli), 0);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o p.otd -q", cli), 0);
    ck_assert_msg(out[0] == 0, "%s", out);
}
END_TEST

#if OTAUP_HAVE_MBEDTLS
/* KEY.pub.c compiles whatever the key is called, also after one of the
 * library's otaup_key_ functions (it declared otaup_key_public again) */
START_TEST(test_keygen_c_array_compiles)
{
    static const char *const names[] = { "public", "sign", "id", "free", "parse", "generate", "has_private",
                                         "write_pem", "release.key", "k" };
    const char *src = getenv("OTAUP_SRC_DIR"), *bin = getenv("OTAUP_BIN_DIR");
    unsigned k;
    ck_assert_ptr_nonnull(src);
    for (k = 0; k < sizeof names / sizeof names[0]; k++) {
        ck_assert_int_eq(run("%s keygen -o %s", cli, names[k]), 0);
        ck_assert_msg(run("cc -std=c99 -Wall -Werror -fsyntax-only -I%s/include -I%s/include %s.pub.c", src, bin,
                          names[k]) == 0,
                      "%s.pub.c: %s", names[k], out);
    }
    ck_assert_int_eq(run("grep -q 'otaup_key_public_key = ' public.pub.c && grep -q 'otaup_key_k = ' k.pub.c"), 0);
}
END_TEST
#endif

/* otaup help COMMAND is COMMAND's --help; the list names --version */
START_TEST(test_help_command)
{
    static const char *const cmds[] = { "delta", "apply", "inspect", "sig", "keygen", "sign", "verify" };
    unsigned k;
    char want[64];
    for (k = 0; k < sizeof cmds / sizeof cmds[0]; k++) {
        ck_assert_int_eq(run("%s help %s", cli, cmds[k]), 0);
        snprintf(want, sizeof want, "usage: otaup %s ", cmds[k]);
        ck_assert_msg(has(want), "help %s: %s", cmds[k], out);
    }
    ck_assert_int_eq(run("%s help bogus", cli), 2);
    ck_assert_msg(has("unknown command 'bogus'"), "%s", out);
    ck_assert_int_eq(run("%s help", cli), 0);
    ck_assert_msg(has("otaup --version") && has("delta "), "%s", out);
}
END_TEST

/* README.md's tool walk, in place and A/B, as a user runs it */
START_TEST(test_readme_walk)
{
    ck_assert_int_eq(run("%s delta old.bin new.bin -o p.otd --sector-size 4096 --mode inplace --ram 16384", cli), 0);
    ck_assert_int_eq(run("%s inspect p.otd", cli), 0);
    ck_assert_msg(has("sectors") && has("records"), "%s", out);
    ck_assert_int_eq(run("%s apply old.bin p.otd -o out.bin && cmp out.bin new.bin", cli), 0);
    ck_assert_int_eq(run("cp old.bin f.bin && %s apply --flash f.bin p.otd --cut-after 40 --torn", cli), 3);
    ck_assert_msg(has("power cut after 40") && exists("f.bin.otaup-state"), "%s", out);
    ck_assert_int_eq(run("%s apply --flash f.bin p.otd --stats", cli), 0);
    ck_assert_msg(has("sectors erased:") && has("estimated flash time:") && has("resumed and finished"), "%s", out);
    ck_assert(!exists("f.bin.otaup-state"));
    ck_assert_int_eq(run("cmp f.bin new.bin"), 0);
    ck_assert_int_eq(run("%s apply --flash f.bin p.otd", cli), 0);
    ck_assert_msg(has("already holds the new image"), "%s", out);
    /* A/B: NEW in the target slot, which ends FLASH; OLD kept before it */
    ck_assert_int_eq(run("%s delta old.bin new.bin -o ab.otd --mode ab -q", cli), 0);
    ck_assert_int_eq(run("cp old.bin g.bin && %s apply --flash g.bin ab.otd --cut-after 30 --torn", cli), 3);
    ck_assert_int_eq(run("%s apply --flash g.bin ab.otd", cli), 0);
    ck_assert_int_eq(run("tail -c %u g.bin | cmp - new.bin && head -c %u g.bin | cmp - old.bin",
                         (unsigned)sizeof new_img, (unsigned)sizeof old_img),
                     0);
    ck_assert_int_eq(run("%s apply --flash g.bin ab.otd", cli), 0);
    ck_assert_msg(has("already holds the new image"), "%s", out);
    /* A/B back to the slot at 0: FLASH holds OLD at 0x10000, and a FLASH
     * without it is told where OLD was looked for */
    ck_assert_int_eq(run("%s delta old.bin new.bin -o back.otd --mode ab --source 0x10000 --target 0 -q", cli), 0);
    ck_assert_int_eq(run("cp old.bin h.bin && %s apply --flash h.bin back.otd", cli), 1);
    ck_assert_msg(has("OLD, 30000 bytes at offset 0x10000 of FLASH"), "%s", out);
    {
        static uint8_t fl[0x10000 + sizeof old_img];
        memset(fl, 0xFF, 0x10000);
        memcpy(fl + 0x10000, old_img, sizeof old_img);
        test_write_file(dir, "h.bin", fl, sizeof fl);
    }
    ck_assert_int_eq(run("%s apply --flash h.bin back.otd", cli), 0);
    ck_assert_int_eq(run("head -c %u h.bin | cmp - new.bin && tail -c %u h.bin | cmp - old.bin",
                         (unsigned)sizeof new_img, (unsigned)sizeof old_img),
                     0);
}
END_TEST

#if OTAUP_HAVE_MBEDTLS
START_TEST(test_verify_q)
{
    ck_assert_int_eq(run("%s keygen -o k", cli), 0);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o s.otd --sign k --model M -q", cli), 0);
    ck_assert_int_eq(run("%s verify --pub k.pub -q s.otd", cli), 0);
    ck_assert_msg(out[0] == 0, "%s", out);
    ck_assert_int_eq(run("%s verify --pub k.pub s.otd", cli), 0);
    ck_assert_msg(has("signature:"), "%s", out);
}
END_TEST

/* --pub checks a delta even when FLASH holds its new image already */
START_TEST(test_pub_when_flash_holds_new)
{
    ck_assert_int_eq(run("%s keygen -o k && %s keygen -o other", cli, cli), 0);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o p.otd -q", cli), 0);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o s.otd --sign k --model M --counter 3 --version 7 -q", cli), 0);
    ck_assert_int_eq(run("cp new.bin f.bin"), 0);
    /* what a terminal refuses from OLD ... */
    ck_assert_int_eq(run("cp old.bin o.bin && %s apply --flash o.bin p.otd --pub k.pub", cli), 1);
    ck_assert_msg(has("OTAUP_E_UNSIGNED"), "%s", out);
    /* ... is refused over NEW too, FLASH untouched */
    ck_assert_int_eq(run("%s apply --flash f.bin p.otd --pub k.pub", cli), 1);
    ck_assert_msg(has("OTAUP_E_UNSIGNED") && !has("already holds the new image\n"), "%s", out);
    ck_assert_int_eq(run("%s apply --flash f.bin s.otd --pub other.pub", cli), 1);
    ck_assert_msg(has("OTAUP_E_KEY") || has("OTAUP_E_SIGNATURE"), "%s", out);
    ck_assert_int_eq(run("%s apply --flash f.bin s.otd --pub k.pub --model N", cli), 1);
    ck_assert_msg(has("OTAUP_E_MODEL"), "%s", out);
    ck_assert_int_eq(run("%s apply --flash f.bin s.otd --pub k.pub --counter 4", cli), 1);
    ck_assert_msg(has("OTAUP_E_ROLLBACK"), "%s", out);
    ck_assert_int_eq(run("%s apply --flash f.bin s.otd --pub k.pub --installed-version 8", cli), 1);
    ck_assert_msg(has("OTAUP_E_OLDER"), "%s", out);
    ck_assert_int_eq(run("cmp f.bin new.bin"), 0);
    ck_assert(!exists("f.bin.otaup-state"));
    /* what it accepts: already there, exit 0; without --pub, as before */
    ck_assert_int_eq(run("%s apply --flash f.bin s.otd --pub other.pub --pub k.pub --model M --counter 3", cli), 0);
    ck_assert_msg(has("already holds the new image"), "%s", out);
    ck_assert_int_eq(run("%s apply --flash f.bin p.otd", cli), 0);
    ck_assert_msg(has("already holds the new image"), "%s", out);
    ck_assert_int_eq(run("cmp f.bin new.bin"), 0);
}
END_TEST
#endif

int main(void)
{
    int failed;
    SRunner *sr;
    Suite *s = suite_create("cli_walk");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_missing_argument_named);
    tcase_add_test(tc, test_readme_walk);
    tcase_add_test(tc, test_help_command);
    tcase_add_test(tc, test_delta_notes);
#if OTAUP_HAVE_MBEDTLS
    tcase_add_test(tc, test_verify_q);
    tcase_add_test(tc, test_pub_when_flash_holds_new);
    tcase_add_test(tc, test_keygen_c_array_compiles);
#endif
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
