/*
 * The files the programs take and write, when they are not what they
 * should be: otaup-term's flash file cut short or grown (refused at
 * start, named with both sizes, not written), `otaup apply --flash` on a
 * FLASH larger than the delta's flash (first run and resumed run), and
 * `otaup keygen --force` when one of its three files cannot be replaced
 * (the old set stays whole, no temporary file left). Below the programs,
 * otaup_simterm_new() itself refuses a flash file not its map's size.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otaup/error.h"
#include "otaup/features.h"
#include "otaup/simterm.h"
#include "util/runcmd.h"

static char dir[128];
static char term[512], tool[512];
static char out[8192];

static void setup(void)
{
    const char *bin = getenv("OTAUP_BIN_DIR");
    snprintf(dir, sizeof dir, "/tmp/otaup-progfiles-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_ptr_nonnull(bin);
    snprintf(term, sizeof term, "%s/examples/otaup-term/otaup-term", bin);
    snprintf(tool, sizeof tool, "%s/examples/otaup/otaup", bin);
}

static void teardown(void)
{
    test_teardown_dir(dir, 0);
}

/* run a shell command in dir, capture stdout+stderr; return exit code */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = test_vrun(dir, 30, out, sizeof out, fmt, ap);
    va_end(ap);
    return rc;
}

static void make_image(const char *name, size_t len, unsigned seed)
{
    unsigned char *p = malloc(len);
    size_t i;
    ck_assert_ptr_nonnull(p);
    for (i = 0; i < len; i++) {
        p[i] = (unsigned char)((i * 7 + seed + (i / 1000) * seed) & 0xFF);
    }
    test_write_file(dir, name, p, len);
    free(p);
}

static long file_size(const char *name)
{
    char p[300];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* A terminal's flash file cut short used to be taken: the missing end
 * read as erased flash (journal and user data gone) and the file was
 * written back to its full size at once, before any message. It is
 * refused before anything opens it for writing, saying how long it is
 * and how long its map is; so is one that is longer than its map, an
 * empty one and a directory in its place. */
START_TEST(test_term_flash_not_its_map)
{
    int refused;
    long full;
    char msg[200];
    make_image("v1.bin", 20000, 1);
    ck_assert_int_eq(run("%s --flash t.flash --init v1.bin --id T1 --model M --version 1.0 --build-time 5 --quiet",
                         term),
                     0);
    full = file_size("t.flash");
    ck_assert_int_gt(full, 20000);
    ck_assert_int_eq(run("cp t.flash whole.flash && cp t.flash.meta whole.flash.meta"), 0);
    /* cut short: the first 100000 bytes, as a full disk or a partial copy leaves it */
    ck_assert_int_eq(run("head -c 100000 whole.flash > t.flash && cp t.flash cut.copy"), 0);
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:%d --reconnect 0 --timeout 1 --quiet", term,
                         test_refused_port(&refused)),
                     1);
    close(refused);
    snprintf(msg, sizeof msg, "otaup-term: t.flash: the flash file is 100000 bytes, its flash map %ld (truncated)",
             full);
    ck_assert_msg(strstr(out, msg) != NULL, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "nothing done"));
    ck_assert_ptr_null(strstr(out, "cannot connect")); /* refused before connecting */
    ck_assert_int_eq(file_size("t.flash"), 100000);
    ck_assert_int_eq(run("cmp t.flash cut.copy"), 0);
    /* longer than the map */
    ck_assert_int_eq(run("cp whole.flash t.flash && head -c 4096 v1.bin >> t.flash && cp t.flash long.copy"), 0);
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:1 --reconnect 0 --timeout 1", term), 1);
    snprintf(msg, sizeof msg, "the flash file is %ld bytes, its flash map %ld (longer than the map", full + 4096, full);
    ck_assert_msg(strstr(out, msg) != NULL, "%s", out);
    ck_assert_int_eq(run("cmp t.flash long.copy"), 0);
    /* empty */
    ck_assert_int_eq(run("truncate -s 0 t.flash"), 0);
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:1 --reconnect 0 --timeout 1", term), 1);
    ck_assert_ptr_nonnull(strstr(out, "the flash file is 0 bytes"));
    ck_assert_int_eq(file_size("t.flash"), 0);
    /* a directory in its place, for a run and for --init */
    ck_assert_int_eq(run("rm t.flash && mkdir t.flash"), 0);
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:1 --reconnect 0 --timeout 1", term), 1);
    ck_assert_ptr_nonnull(strstr(out, "t.flash: not a regular file; nothing done"));
    ck_assert_int_eq(run("%s --flash t.flash --init v1.bin --id T1 --model M --version 1.0 --build-time 5", term), 1);
    ck_assert_ptr_nonnull(strstr(out, "t.flash: not a regular file; nothing done"));
    /* the whole file is still taken (it gets as far as the connection) */
    ck_assert_int_eq(run("%s --flash whole.flash --connect 127.0.0.1:%d --reconnect 0 --timeout 1", term,
                         test_refused_port(&refused)),
                     1);
    close(refused);
    ck_assert_msg(strstr(out, "cannot connect") != NULL, "%s", out);
    ck_assert_int_eq(file_size("whole.flash"), full);
}
END_TEST

/* otaup_simterm_new() on a flash file that is not its map's size (cut
 * short, grown, a directory): OTAUP_E_GEOMETRY, the file as it was
 * (simterm.h). otaup-term looks first, with its own message, so only the
 * library's callers (otaupd's tests, other simulators) met this: a short
 * file was taken, read as erased past its end and written back to the
 * full size at once. otaup_simterm_map_size() gives the size it wants. */
START_TEST(test_simterm_new_refuses_other_size)
{
    static uint8_t img[20000];
    otaup_simterm_options o;
    otaup_simterm *t = NULL;
    char path[300];
    uint32_t map = 0;
    long full;
    size_t i;
    for (i = 0; i < sizeof img; i++) {
        img[i] = (uint8_t)(i * 7 + 1);
    }
    snprintf(path, sizeof path, "%s/s.flash", dir);
    otaup_simterm_options_init(&o);
    o.terminal_id = "T1";
    o.model = "M";
    o.flash_path = path;
    ck_assert_int_eq(otaup_simterm_new(&o, &t), 0);
    ck_assert_int_eq(otaup_simterm_provision(t, img, sizeof img, "1.0", 5), 0);
    otaup_simterm_free(t);
    t = NULL;
    full = file_size("s.flash");
    otaup_simterm_options_init(&o);
    o.flash_path = path;
    ck_assert_int_eq(otaup_simterm_map_size(&o, &map), 0);
    ck_assert_int_eq((long)map, full);
    ck_assert_int_eq(run("cp s.flash whole.copy && head -c %ld whole.copy > s.flash && cp s.flash cut.copy",
                         full - 4096),
                     0);
    ck_assert_int_eq(otaup_simterm_new(&o, &t), OTAUP_E_GEOMETRY);
    otaup_simterm_free(t);
    t = NULL;
    ck_assert_int_eq(file_size("s.flash"), full - 4096);
    ck_assert_int_eq(run("cmp s.flash cut.copy"), 0);
    ck_assert_int_eq(run("cp whole.copy s.flash && head -c 4096 whole.copy >> s.flash"), 0);
    ck_assert_int_eq(otaup_simterm_new(&o, &t), OTAUP_E_GEOMETRY);
    otaup_simterm_free(t);
    t = NULL;
    ck_assert_int_eq(file_size("s.flash"), full + 4096);
    ck_assert_int_eq(run("rm s.flash && mkdir s.flash"), 0);
    ck_assert_int_eq(otaup_simterm_new(&o, &t), OTAUP_E_GEOMETRY);
    otaup_simterm_free(t);
    t = NULL;
    /* its whole file: taken, the terminal as provisioned */
    ck_assert_int_eq(run("rmdir s.flash && cp whole.copy s.flash"), 0);
    ck_assert_int_eq(otaup_simterm_new(&o, &t), 0);
    ck_assert_int_eq(otaup_simterm_provisioned(t), 1);
    ck_assert_str_eq(otaup_simterm_version(t), "1.0");
    otaup_simterm_free(t);
    ck_assert_int_eq(file_size("s.flash"), full);
}
END_TEST

/* FILE.meta damaged: an image size past its slot made otaup-term hash
 * the "image" past the end of the simulated flash (a crash: heap read
 * overflow); sizes past the address space wrapped. Each is refused with
 * a message, exit 1, the flash file untouched. */
START_TEST(test_term_meta_damaged)
{
    static const char *const edits[] = {
        "s/^image_size=.*/image_size=4294967295/",
        "s/^image_size=.*/image_size=262145/",
        "s/^slot_size=.*/slot_size=4294967295/",
        "s/^sector_size=.*/sector_size=300/",
        "s/^user_size=.*/user_size=999999999999/",
    };
    static const char *const says[] = {
        "not a terminal flash file (identity missing or damaged)",
        "not a terminal flash file (identity missing or damaged)",
        "its flash map (t.flash.meta) is not usable",
        "its flash map (t.flash.meta) is not usable",
        "(truncated)",
    };
    size_t i;
    make_image("v1.bin", 20000, 1);
    ck_assert_int_eq(run("%s --flash t.flash --init v1.bin --id T1 --model M --version 1.0 --build-time 5 --quiet",
                         term),
                     0);
    ck_assert_int_eq(run("cp t.flash t.copy && cp t.flash.meta meta.copy"), 0);
    for (i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        ck_assert_int_eq(run("sed '%s' meta.copy > t.flash.meta", edits[i]), 0);
        ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:1 --reconnect 0 --timeout 1", term), 1);
        ck_assert_msg(strstr(out, says[i]) != NULL, "%s: %s", edits[i], out);
        ck_assert_int_eq(run("cmp t.flash t.copy"), 0);
    }
}
END_TEST

/* otaup apply --flash: FLASH may be shorter than the delta's flash (the
 * rest reads erased: docs/cli.md) but not longer. The first run refused
 * that already (now with both sizes); a resumed run did not look: FLASH
 * grown past the device since the cut was rewritten from the sidecar and
 * the bytes past the device were cut off. */
START_TEST(test_apply_flash_larger_than_device)
{
    long whole, grown;
    make_image("v1.bin", 30000, 1);
    make_image("v2.bin", 30000, 2);
    ck_assert_int_eq(run("%s delta v1.bin v2.bin -o p.delta -q", tool), 0);
    /* first run: FLASH far past the device */
    ck_assert_int_eq(run("cp v1.bin f.bin && head -c 4194304 /dev/zero >> f.bin && cp f.bin f.copy"), 0);
    ck_assert_int_eq(run("%s apply --flash f.bin p.delta", tool), 1);
    ck_assert_int_eq(run("cmp f.bin f.copy"), 0);
    ck_assert_int_eq(file_size("f.bin.otaup-state"), -1);
    ck_assert_int_eq(run("%s apply --flash f.bin p.delta", tool), 1);
    ck_assert_msg(strstr(out, "larger than the delta's flash (") != NULL, "%s", out);
    /* a cut, then FLASH grows past the device: the resumed run refuses */
    ck_assert_int_eq(run("cp v1.bin f.bin && %s apply --flash f.bin p.delta --cut-after 5", tool), 3);
    ck_assert_int_gt(file_size("f.bin.otaup-state"), 0);
    ck_assert_int_eq(run("cp f.bin.otaup-state s.copy && head -c 4194304 /dev/zero >> f.bin && cp f.bin f.copy"),
                     0);
    grown = file_size("f.bin");
    ck_assert_int_eq(run("%s apply --flash f.bin p.delta", tool), 1);
    ck_assert_msg(strstr(out, "larger than the delta's flash (") != NULL, "%s", out);
    ck_assert_int_eq(file_size("f.bin"), grown);
    ck_assert_int_eq(run("cmp f.bin f.copy && cmp f.bin.otaup-state s.copy"), 0);
    /* cut back to what it was, the update resumes and finishes */
    whole = grown - 4194304;
    ck_assert_int_eq(run("head -c %ld f.copy > f.bin && %s apply --flash f.bin p.delta", whole, tool), 0);
    ck_assert_int_eq(run("cmp f.bin v2.bin"), 0);
    /* the message names FLASH and both sizes */
    ck_assert_int_eq(run("cp v1.bin f.bin && head -c 4194304 /dev/zero >> f.bin"), 0);
    ck_assert_int_eq(run("%s apply --flash f.bin p.delta", tool), 1);
    ck_assert_msg(strstr(out, "f.bin is 4224304 bytes, larger than the delta's flash (") != NULL, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "nothing done"));
}
END_TEST

#if OTAUP_HAVE_MBEDTLS
/* No file named NAME.tmp.* or NAME.old.* is left in dir. */
static void no_leftovers(void)
{
    ck_assert_int_eq(run("ls -a | grep -E '\\.(tmp|old)\\.[0-9]+$' | wc -l"), 0);
    ck_assert_msg(strncmp(out, "0", 1) == 0, "left: %s", out);
}

/* otaup keygen --force replaced KEY, KEY.pub and KEY.pub.c one after the
 * other: when the third could not be replaced (a directory in its place)
 * the first two were new and the third old, a key whose C array is not
 * its public key. Now all three are written first and a name that cannot
 * be replaced is refused before any rename: the old set stays whole,
 * whichever of the three is in the way, and no temporary file is left. */
START_TEST(test_keygen_force_keeps_the_set)
{
    static const char *const names[3] = { "key", "key.pub", "key.pub.c" };
    static char said[sizeof out];
    int i;
    ck_assert_int_eq(run("%s keygen -o key", tool), 0);
    ck_assert_int_eq(run("cat key key.pub key.pub.c > set.before && for f in key key.pub key.pub.c; do cp $f saved.$f; "
                         "done"),
                     0);
    for (i = 2; i >= 0; i--) {
        /* that one's place taken by a directory; the other two are the old set's */
        ck_assert_int_eq(run("cp %s saved && rm %s && mkdir %s", names[i], names[i], names[i]), 0);
        ck_assert_int_eq(run("%s keygen -o key --force", tool), 1);
        memcpy(said, out, sizeof said);
        ck_assert_int_eq(run("cmp %s saved.%s && cmp %s saved.%s", names[(i + 1) % 3], names[(i + 1) % 3],
                             names[(i + 2) % 3], names[(i + 2) % 3]),
                         0);
        ck_assert_msg(strstr(said, "Is a directory") != NULL, "%s", said);
        ck_assert_ptr_nonnull(strstr(said, "no key written"));
        no_leftovers();
        ck_assert_int_eq(run("rmdir %s && mv saved %s && cat key key.pub key.pub.c | cmp - set.before", names[i],
                             names[i]),
                         0);
    }
    /* nothing in the way: a new set, whole */
    ck_assert_int_eq(run("%s keygen -o key --force", tool), 0);
    ck_assert_int_ne(run("cat key key.pub key.pub.c | cmp -s - set.before"), 0);
    no_leftovers();
    ck_assert_int_eq(run("stat -c %%a key"), 0);
    ck_assert_ptr_nonnull(strstr(out, "600"));
    /* through a symbolic link: the file it names is replaced, the link stays */
    ck_assert_int_eq(run("mkdir real && mv key.pub.c real/c && ln -s real/c key.pub.c"), 0);
    ck_assert_int_eq(run("%s keygen -o key --force", tool), 0);
    ck_assert_int_eq(run("test -L key.pub.c && cmp key.pub.c real/c"), 0);
    no_leftovers();
    ck_assert_int_eq(run("ls -a real | grep -c -E '\\.(tmp|old)\\.'"), 1); /* grep -c: 0 lines, exit 1 */
}
END_TEST
#endif

static Suite *suite(void)
{
    Suite *s = suite_create("progfiles");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_term_flash_not_its_map);
    tcase_add_test(tc, test_term_meta_damaged);
    tcase_add_test(tc, test_simterm_new_refuses_other_size);
    tcase_add_test(tc, test_apply_flash_larger_than_device);
#if OTAUP_HAVE_MBEDTLS
    tcase_add_test(tc, test_keygen_force_keeps_the_set);
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
