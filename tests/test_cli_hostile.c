/*
 * The otaup tool against awkward input, as docs/cli.md promises: an
 * output never replaces an input (exit 2, the input unchanged, by any
 * path); a directory or unreadable file is refused with the system's
 * reason (exit 1); an unfinished update's sidecar that cannot be read
 * (or is no regular file) refuses the run with FLASH and sidecar
 * untouched, and a FLASH that is no regular file is refused at once;
 * --pub's checks without --pub are a usage error, and so are delta
 * options that the layout, the flash or an unsigned delta has no use
 * for, and option values that the planner would silently change or
 * that name nothing; messages name the file they are about.
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
static uint8_t old_img[20000], new_img[21000];

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

/* 1 when dir/name holds exactly p[0..n) */
static int file_is(const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    FILE *f;
    uint8_t *b = malloc(n + 1);
    size_t got = 0;
    int eq;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f != NULL) {
        got = fread(b, 1, n + 1, f);
        fclose(f);
    }
    eq = f != NULL && got == n && memcmp(b, p, n) == 0;
    free(b);
    return eq;
}

static int exists(const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static int has(const char *s)
{
    return strstr(out, s) != NULL;
}

static void setup(void)
{
    const char *bin = getenv("OTAUP_BIN_DIR");
    size_t i;
    uint32_t x = 12345;
    ck_assert_ptr_nonnull(bin);
    snprintf(dir, sizeof dir, "/tmp/otaup-clihostile-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(cli, sizeof cli, "%s/examples/otaup/otaup", bin);
    for (i = 0; i < sizeof old_img; i++) {
        x = x * 1103515245u + 12345u;
        old_img[i] = (uint8_t)(x >> 16);
    }
    memcpy(new_img, old_img, sizeof old_img);
    for (i = 0; i < sizeof new_img; i += 3000) {
        new_img[i] ^= 0x5A; /* a few changes, and 1000 bytes more */
    }
    for (i = sizeof old_img; i < sizeof new_img; i++) {
        new_img[i] = (uint8_t)(i * 7u);
    }
    test_write_file(dir, "old.bin", old_img, sizeof old_img);
    test_write_file(dir, "new.bin", new_img, sizeof new_img);
    ck_assert_int_eq(run("mkdir adir"), 0);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o p.otd -q", cli), 0);
    ck_assert_int_eq(run("%s sig old.bin -o old.sig -q", cli), 0);
}

static void teardown(void)
{
    test_teardown_dir(dir, 0);
}

/* -o naming an input, by the same or another path: exit 2, input unchanged */
START_TEST(test_output_is_input)
{
    ck_assert_int_eq(run("%s delta old.bin new.bin -o old.bin -q", cli), 2);
    ck_assert_msg(has("is the OLD"), "%s", out);
    ck_assert(file_is("old.bin", old_img, sizeof old_img));
    ck_assert_int_eq(run("%s delta old.bin new.bin -o ./new.bin -q", cli), 2);
    ck_assert(file_is("new.bin", new_img, sizeof new_img));
    ck_assert_int_eq(run("%s delta --from-sig old.sig new.bin -o ../$(basename $PWD)/old.sig -q", cli), 2);
    ck_assert_int_eq(run("%s inspect old.sig", cli), 0);
    ck_assert_int_eq(run("%s sig old.bin -o old.bin -q", cli), 2);
    ck_assert(file_is("old.bin", old_img, sizeof old_img));
    ck_assert_int_eq(run("%s apply old.bin p.otd -o old.bin", cli), 2);
    ck_assert_msg(has("is the OLD image"), "%s", out);
    ck_assert(file_is("old.bin", old_img, sizeof old_img));
    ck_assert_int_eq(run("%s apply old.bin p.otd -o ./p.otd", cli), 2);
    ck_assert_int_eq(run("%s inspect p.otd", cli), 0);
    ck_assert_int_eq(run("%s apply --flash p.otd p.otd", cli), 2);
    ck_assert_int_eq(run("%s inspect p.otd", cli), 0);
    /* another output is fine; another name of the same file (a hard link) is not */
    ck_assert_int_eq(run("%s apply old.bin p.otd -o out.bin", cli), 0);
    ck_assert(file_is("out.bin", new_img, sizeof new_img));
    ck_assert_int_eq(run("ln old.bin old2.bin && %s sig old.bin -o old2.bin -q", cli), 2);
    ck_assert(file_is("old.bin", old_img, sizeof old_img));
#if OTAUP_HAVE_MBEDTLS
    ck_assert_int_eq(run("%s keygen -o k", cli), 0);
    ck_assert_int_eq(run("cp k k.orig && %s delta old.bin new.bin -o k --sign k --model M -q", cli), 2);
    ck_assert_msg(has("is the signing key"), "%s", out);
    ck_assert_int_eq(run("cmp k k.orig"), 0);
    ck_assert_int_eq(run("%s sign --key k --model M --old old.bin --new new.bin p.otd -o old.bin", cli), 2);
    ck_assert(file_is("old.bin", old_img, sizeof old_img));
    ck_assert_int_eq(run("%s sign --key k --model M --old old.bin --new new.bin p.otd -o k", cli), 2);
    ck_assert_int_eq(run("cmp k k.orig"), 0);
    /* PATCH itself may be replaced, as documented */
    ck_assert_int_eq(run("cp p.otd s.otd && %s sign --key k --model M --old old.bin --new new.bin s.otd -o s.otd",
                         cli), 0);
    ck_assert_int_eq(run("%s verify --pub k.pub s.otd --quiet", cli), 0);
#endif
}
END_TEST

/* a directory where a file is expected: the system's reason, exit 1 */
START_TEST(test_directory_input)
{
    ck_assert_int_eq(run("%s inspect adir", cli), 1);
    ck_assert_msg(has("adir: Is a directory"), "%s", out);
    ck_assert_int_eq(run("%s sig adir", cli), 1);
    ck_assert_msg(has("adir: Is a directory"), "%s", out);
    ck_assert_int_eq(run("%s delta adir new.bin -o x.otd -q", cli), 1);
    ck_assert_msg(has("adir: Is a directory"), "%s", out);
    ck_assert_int_eq(run("%s apply adir p.otd -o x.bin", cli), 1);
    ck_assert_msg(has("adir: Is a directory"), "%s", out);
    ck_assert_int_eq(run("%s apply old.bin adir -o x.bin", cli), 1);
    ck_assert_msg(has("adir: Is a directory"), "%s", out);
    ck_assert_int_eq(run("%s apply --flash adir p.otd", cli), 1);
    ck_assert_msg(has("adir: Is a directory"), "%s", out);
    ck_assert(!exists("x.otd") && !exists("x.bin"));
#if OTAUP_HAVE_MBEDTLS
    ck_assert_int_eq(run("%s verify --pub adir p.otd", cli), 1);
    ck_assert_msg(has("adir: Is a directory"), "%s", out);
#endif
}
END_TEST

/* An unfinished update's sidecar that exists but cannot be read is not
 * "no update": the run is refused, FLASH and the sidecar untouched
 * (it used to go on from FLASH, and remove the sidecar at the end). */
START_TEST(test_sidecar_unreadable)
{
    test_write_file(dir, "flash.bin", old_img, sizeof old_img);
    ck_assert_int_eq(run("mkdir flash.bin.otaup-state"), 0);
    ck_assert_int_eq(run("%s apply --flash flash.bin p.otd", cli), 1);
    ck_assert_msg(has("flash.bin.otaup-state holds the state of an unfinished update and cannot be read"), "%s",
                  out);
    ck_assert(file_is("flash.bin", old_img, sizeof old_img));
    ck_assert(exists("flash.bin.otaup-state"));
    /* a FIFO there: refused at once, not waiting for a writer */
    ck_assert_int_eq(run("rmdir flash.bin.otaup-state && mkfifo flash.bin.otaup-state"), 0);
    ck_assert_int_eq(run("timeout 10 %s apply --flash flash.bin p.otd", cli), 1);
    ck_assert_msg(has("not a regular file"), "%s", out);
    ck_assert(file_is("flash.bin", old_img, sizeof old_img));
    ck_assert_int_eq(run("rm flash.bin.otaup-state && mkdir flash.bin.otaup-state"), 0);
    /* without it, the update runs */
    ck_assert_int_eq(run("rmdir flash.bin.otaup-state && %s apply --flash flash.bin p.otd", cli), 0);
    ck_assert(file_is("flash.bin", new_img, sizeof new_img));
}
END_TEST

/* FLASH must be a regular file: a FIFO blocked the run (for ever, with
 * no writer), a device is no flash image */
START_TEST(test_flash_not_regular)
{
    ck_assert_int_eq(run("mkfifo ff && timeout 10 %s apply --flash ff p.otd", cli), 1);
    ck_assert_msg(has("ff: not a regular file"), "%s", out);
    ck_assert_int_eq(run("timeout 10 %s apply --flash /dev/null p.otd", cli), 1);
    ck_assert_msg(has("not a regular file"), "%s", out);
    ck_assert(!exists("ff.otaup-state"));
}
END_TEST

/* --model, --counter, --installed-version check a signed delta with
 * --pub; without it they changed nothing, silently */
START_TEST(test_pub_checks_need_pub)
{
    test_write_file(dir, "flash.bin", old_img, sizeof old_img);
    ck_assert_int_eq(run("%s apply --flash flash.bin p.otd --model M", cli), 2);
    ck_assert_msg(has("give --pub PUB"), "%s", out);
    ck_assert_int_eq(run("%s apply --flash flash.bin p.otd --counter 3", cli), 2);
    ck_assert_int_eq(run("%s apply old.bin p.otd -o out.bin --installed-version 2", cli), 2);
    ck_assert(file_is("flash.bin", old_img, sizeof old_img));
    ck_assert(!exists("out.bin") && !exists("flash.bin.otaup-state"));
}
END_TEST

/* option values the planner would change without a word, or that name
 * nothing, are usage errors; a hex count in a sector map is a count */
START_TEST(test_delta_option_values)
{
    ck_assert_int_eq(run("%s delta old.bin new.bin -o x.otd -q --staging 2M", cli), 2);
    ck_assert_msg(has("--staging is at most"), "%s", out);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o x.otd -q --sign", cli), 2);
    ck_assert_msg(has("--sign needs a KEY"), "%s", out);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o x.otd -q --sector-map 16x4K,", cli), 2);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o x.otd -q --sector-map ,16x4K", cli), 2);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o x.otd -q --sector-map 8x4K,,8x4K", cli), 2);
    ck_assert(!exists("x.otd"));
    ck_assert_int_eq(run("%s delta old.bin new.bin -o x.otd -q --sector-map 0x10x0x1000", cli), 0);
    ck_assert_int_eq(run("%s inspect x.otd --json", cli), 0);
    ck_assert_msg(has("\"runs\":[{\"count\":16,\"size\":4096}]"), "%s", out);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o y.otd -q --staging 1M", cli), 0);
}
END_TEST

/* options the delta (or inspect of a signature) has no use for were
 * dropped without a word */
START_TEST(test_delta_unused_options)
{
    ck_assert_int_eq(run("%s delta old.bin new.bin -o x.otd -q --sector-size 512 --sector-map 16x4K", cli), 2);
    ck_assert_msg(has("exclude each other"), "%s", out);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o x.otd -q --mode ab --scratch 0x20000", cli), 2);
    ck_assert_msg(has("--mode ab: a scratch area takes both --scratch and --scratch-size"), "%s", out);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o x.otd -q --scratch-size 64K --mode ab", cli), 2);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o x.otd -q --target 0x20000", cli), 2);
    ck_assert_msg(has("--target is for --mode ab"), "%s", out);
    ck_assert_int_eq(run("%s inspect old.sig --steps", cli), 2);
    ck_assert_msg(has("is a block signature"), "%s", out);
    ck_assert_int_eq(run("%s inspect old.sig --json", cli), 0);
    ck_assert_int_eq(run("%s inspect p.otd --steps", cli), 0);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o x.otd -q --model M", cli), 2);
    ck_assert_msg(has("--model goes into a signed delta's manifest"), "%s", out);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o x.otd -q --counter 3 --no-source", cli), 2);
    ck_assert(!exists("x.otd"));
    /* what they mean where they apply, and the defaults said again, stay fine */
    ck_assert_int_eq(run("%s delta old.bin new.bin -o a.otd -q --mode ab --target 0x20000 --scratch-size 0", cli), 0);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o b.otd -q --target 0 --sector-size 4096", cli), 0);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o c.otd -q --scratch 0x10000 --sector-map 32x4K", cli), 0);
}
END_TEST

/* --mode ab with a scratch area (docs/cli.md): a target sector larger
 * than the staging buffer is refused without one, planned with one (the
 * delta names it), and a scratch area over a slot is refused */
START_TEST(test_delta_ab_scratch)
{
    ck_assert_int_eq(run("%s delta old.bin new.bin -o x.otd -q --mode ab --sector-size 64K --staging 8K", cli), 1);
    ck_assert_msg(has("OTAUP_E_LIMIT") && has("unless a scratch area"), "%s", out);
    ck_assert(!exists("x.otd"));
    ck_assert_int_eq(run("%s delta old.bin new.bin -o x.otd -q --mode ab --sector-size 64K --staging 8K "
                         "--scratch 0x20000 --scratch-size 64K",
                         cli),
                     0);
    ck_assert_int_eq(run("%s inspect x.otd --json", cli), 0);
    ck_assert_msg(has("\"scratch_addr\":131072,\"scratch_size\":65536,\"staging_size\":8192"), "%s", out);
    ck_assert_int_eq(run("%s apply old.bin x.otd -o out.bin", cli), 0);
    ck_assert(file_is("out.bin", new_img, sizeof new_img));
    /* the same area over the target slot (at 0x10000) or the old image */
    ck_assert_int_eq(run("%s delta old.bin new.bin -o y.otd -q --mode ab --sector-size 64K --staging 8K "
                         "--scratch 0x10000 --scratch-size 64K",
                         cli),
                     1);
    ck_assert_msg(has("OTAUP_E_REGION") && has("apart from both slots"), "%s", out);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o y.otd -q --mode ab --sector-size 64K --staging 8K "
                         "--scratch 0 --scratch-size 64K",
                         cli),
                     2); /* an address of 0 reads as none: a size alone */
    /* sectors that fit the staging buffer: the scratch area goes unused */
    ck_assert_int_eq(run("%s delta old.bin new.bin -o z.otd -q --mode ab --sector-size 4K --scratch 0x20000 "
                         "--scratch-size 4K",
                         cli),
                     0);
    ck_assert_int_eq(run("%s inspect z.otd --json", cli), 0);
    ck_assert_msg(has("\"scratch_addr\":0,\"scratch_size\":0,"), "%s", out);
    ck_assert(!exists("y.otd"));
}
END_TEST

/* otaup sig --build-time: 64 bits, as the signature holds it */
START_TEST(test_sig_build_time)
{
    ck_assert_int_eq(run("%s sig old.bin -o t.sig -q --build-time 4294967296", cli), 0);
    ck_assert_int_eq(run("%s inspect t.sig --json", cli), 0);
    ck_assert_msg(has("\"build_time\":4294967296"), "%s", out);
    ck_assert_int_eq(run("%s sig old.bin -o u.sig -q --build-time 18446744073709551616", cli), 2);
    ck_assert_int_eq(run("%s sig old.bin -o u.sig -q --build-time 12x", cli), 2);
    ck_assert(!exists("u.sig"));
}
END_TEST

#if OTAUP_HAVE_MBEDTLS
/* keygen refuses to replace any of its three files, and names the one there */
START_TEST(test_keygen_names_existing)
{
    ck_assert_int_eq(run("touch k.pub.c && %s keygen -o k", cli), 1);
    ck_assert_msg(has("k.pub.c exists"), "%s", out);
    ck_assert(!exists("k") && !exists("k.pub"));
    ck_assert_int_eq(run("rm k.pub.c && touch k.pub && %s keygen -o k", cli), 1);
    ck_assert_msg(has("k.pub exists"), "%s", out);
    ck_assert_int_eq(run("%s keygen -o k --force", cli), 0);
}
END_TEST
#endif

/* FLASH, or an output, given as a symbolic link: the file it points to is
 * updated and the link stays a link (a rename over the link left the
 * file it named as it was, and the link a copy) */
START_TEST(test_symlinked_outputs)
{
    struct stat st;
    char path[512];
    ck_assert_int_eq(run("mkdir real && cp old.bin real/flash.bin && ln -s real/flash.bin fl.bin"), 0);
    ck_assert_int_eq(run("%s apply --flash fl.bin p.otd --cut-after 3", cli), 3);
    ck_assert_int_eq(run("%s apply --flash fl.bin p.otd", cli), 0);
    ck_assert(file_is("real/flash.bin", new_img, sizeof new_img));
    snprintf(path, sizeof path, "%s/fl.bin", dir);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert(!exists("fl.bin.otaup-state"));
    /* -o through a link: delta, apply -o, sig */
    ck_assert_int_eq(run("touch real/p2.otd real/out.bin real/s.sig && ln -s real/p2.otd p2.otd && "
                         "ln -s real/out.bin out.bin && ln -s real/s.sig s.sig"), 0);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o p2.otd -q", cli), 0);
    ck_assert_int_eq(run("%s apply old.bin real/p2.otd -o out.bin", cli), 0);
    ck_assert(file_is("real/out.bin", new_img, sizeof new_img));
    ck_assert_int_eq(run("%s sig old.bin -o s.sig -q && cmp -s real/s.sig old.sig", cli), 0);
    snprintf(path, sizeof path, "%s/out.bin", dir);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
}
END_TEST

/* A file planted under an output's old temporary name (PATH.tmp, here a
 * link to another file) is neither written through nor moved into place:
 * every output goes through a temporary file of the process's own. */
START_TEST(test_planted_temporary)
{
    static const char victim[] = "keep me";
    struct stat st;
    char path[512];
    ck_assert_int_eq(run("printf 'keep me' > victim && ln -s victim p3.otd.tmp && ln -s victim s3.sig.tmp"), 0);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o p3.otd -q", cli), 0);
    ck_assert_int_eq(run("%s sig old.bin -o s3.sig -q", cli), 0);
    ck_assert_msg(file_is("victim", (const uint8_t *)victim, sizeof victim - 1), "written through a planted link");
    ck_assert_int_eq(run("cmp -s s3.sig old.sig"), 0);
    ck_assert_int_eq(run("%s apply old.bin p3.otd -o out3.bin", cli), 0);
    ck_assert(file_is("out3.bin", new_img, sizeof new_img));
    snprintf(path, sizeof path, "%s/p3.otd", dir);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(run("ls p3.otd.tmp.* s3.sig.tmp.* 2>/dev/null | wc -l | grep -qx 0"), 0);
    /* apply -o, and --flash (FLASH.tmp, its sidecar's temporary name) cut and resumed */
    ck_assert_int_eq(run("ln -s victim o3.bin.tmp && cp old.bin f3.bin && ln -s victim f3.bin.tmp && "
                         "ln -s victim f3.bin.otaup-state.tmp"),
                     0);
    ck_assert_int_eq(run("%s apply old.bin p3.otd -o o3.bin", cli), 0);
    ck_assert(file_is("o3.bin", new_img, sizeof new_img));
    ck_assert_int_eq(run("%s apply --flash f3.bin p3.otd --cut-after 5", cli), 3);
    ck_assert(exists("f3.bin.otaup-state"));
    ck_assert_int_eq(run("%s apply --flash f3.bin p3.otd", cli), 0);
    ck_assert(file_is("f3.bin", new_img, sizeof new_img));
    ck_assert_msg(file_is("victim", (const uint8_t *)victim, sizeof victim - 1), "written through a planted link");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cli_hostile");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_output_is_input);
    tcase_add_test(tc, test_directory_input);
    tcase_add_test(tc, test_sidecar_unreadable);
    tcase_add_test(tc, test_flash_not_regular);
    tcase_add_test(tc, test_pub_checks_need_pub);
    tcase_add_test(tc, test_delta_option_values);
    tcase_add_test(tc, test_delta_unused_options);
    tcase_add_test(tc, test_delta_ab_scratch);
    tcase_add_test(tc, test_sig_build_time);
    tcase_add_test(tc, test_symlinked_outputs);
    tcase_add_test(tc, test_planted_temporary);
#if OTAUP_HAVE_MBEDTLS
    tcase_add_test(tc, test_keygen_names_existing);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
