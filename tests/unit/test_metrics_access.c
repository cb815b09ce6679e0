/*
 * test_metrics_access.c -- Check suite for who may GET /metrics
 * (ep_metrics_access_new, ep_metrics_allowed): the address list alone, the
 * bearer token alone, both (both must match), neither (nobody), and token
 * files that are refused (missing, too short).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "config/config.h"
#include "core/fastauth.h"
#include "endpoints/ep_metrics.h"

#define TOKEN	"s3cret-metrics-token-0123456789"

static char	dir[64];
static char	tokfile[128];

static void
setup(void)
{
	FILE *f;

	snprintf(dir, sizeof dir, "/tmp/tmacc.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(tokfile, sizeof tokfile, "%s/token", dir);
	ck_assert_ptr_nonnull(f = fopen(tokfile, "w"));
	fprintf(f, "  %s  \n# ignored\n", TOKEN);
	fclose(f);
}

static void
teardown(void)
{
	char p[160];

	snprintf(p, sizeof p, "%s/short", dir);
	unlink(p);
	unlink(tokfile);
	rmdir(dir);
}

static struct metrics_access *
access_for(const char *allow, const char *file)
{
	struct config *cfg = config_new();
	struct metrics_access *a;
	char *cause = NULL;

	ck_assert_int_eq(config_set(cfg, "metrics_allow", allow, &cause), FA_OK);
	ck_assert_int_eq(config_set(cfg, "metrics_token_file", file, &cause), FA_OK);
	a = ep_metrics_access_new(cfg, &cause);
	ck_assert_msg(a != NULL, "ep_metrics_access_new: %s", cause ? cause : "?");
	config_free(cfg);
	return a;
}

START_TEST(test_default_loopback)
{
	struct config *cfg = config_new();
	struct metrics_access *a;
	char *cause = NULL;

	a = ep_metrics_access_new(cfg, &cause);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(ep_metrics_allowed(a, "127.0.0.1", NULL), 1);
	ck_assert_int_eq(ep_metrics_allowed(a, "::1", NULL), 1);
	ck_assert_int_eq(ep_metrics_allowed(a, "::ffff:127.0.0.1", NULL), 1);
	ck_assert_int_eq(ep_metrics_allowed(a, "127.0.0.2", NULL), 0);
	ck_assert_int_eq(ep_metrics_allowed(a, "192.0.2.1", NULL), 0);
	ck_assert_int_eq(ep_metrics_allowed(a, "", NULL), 0);
	ep_metrics_access_free(a);
	config_free(cfg);
}
END_TEST

START_TEST(test_allow_only)
{
	struct metrics_access *a = access_for("10.0.0.0/8, 2001:db8::/32", "");

	ck_assert_int_eq(ep_metrics_allowed(a, "10.1.2.3", NULL), 1);
	ck_assert_int_eq(ep_metrics_allowed(a, "2001:db8::7", "Bearer x"), 1);
	ck_assert_int_eq(ep_metrics_allowed(a, "127.0.0.1", NULL), 0);
	ck_assert_int_eq(ep_metrics_allowed(a, "11.0.0.1", "Bearer " TOKEN), 0);
	ep_metrics_access_free(a);
}
END_TEST

START_TEST(test_token_only)
{
	struct metrics_access *a = access_for("", tokfile);

	ck_assert_int_eq(ep_metrics_allowed(a, "192.0.2.1", "Bearer " TOKEN), 1);
	ck_assert_int_eq(ep_metrics_allowed(a, "192.0.2.1", "bearer " TOKEN), 1);
	ck_assert_int_eq(ep_metrics_allowed(a, "192.0.2.1", NULL), 0);
	ck_assert_int_eq(ep_metrics_allowed(a, "192.0.2.1", "Bearer "), 0);
	ck_assert_int_eq(ep_metrics_allowed(a, "192.0.2.1", "Bearer " TOKEN "x"), 0);
	ck_assert_int_eq(ep_metrics_allowed(a, "192.0.2.1", "Bearer s3cret"), 0);
	ck_assert_int_eq(ep_metrics_allowed(a, "192.0.2.1", "Basic " TOKEN), 0);
	ck_assert_int_eq(ep_metrics_allowed(a, "192.0.2.1", TOKEN), 0);
	ep_metrics_access_free(a);
}
END_TEST

START_TEST(test_both_must_match)
{
	struct metrics_access *a = access_for("192.0.2.0/24", tokfile);

	ck_assert_int_eq(ep_metrics_allowed(a, "192.0.2.9", "Bearer " TOKEN), 1);
	ck_assert_int_eq(ep_metrics_allowed(a, "192.0.2.9", NULL), 0);
	ck_assert_int_eq(ep_metrics_allowed(a, "198.51.100.1", "Bearer " TOKEN), 0);
	ep_metrics_access_free(a);
}
END_TEST

START_TEST(test_neither_is_nobody)
{
	struct metrics_access *a = access_for("", "");

	ck_assert_int_eq(ep_metrics_allowed(a, "127.0.0.1", NULL), 0);
	ck_assert_int_eq(ep_metrics_allowed(a, "127.0.0.1", "Bearer " TOKEN), 0);
	ep_metrics_access_free(a);
}
END_TEST

START_TEST(test_bad_token_files)
{
	struct config *cfg = config_new();
	char *cause = NULL, p[160];
	FILE *f;

	snprintf(p, sizeof p, "%s/missing", dir);
	ck_assert_int_eq(config_set(cfg, "metrics_token_file", p, &cause), FA_OK);
	ck_assert_ptr_null(ep_metrics_access_new(cfg, &cause));
	ck_assert_ptr_nonnull(strstr(cause, "missing"));
	free(cause);
	cause = NULL;
	snprintf(p, sizeof p, "%s/short", dir);
	ck_assert_ptr_nonnull(f = fopen(p, "w"));
	fputs("tooshort\n", f);
	fclose(f);
	ck_assert_int_eq(config_set(cfg, "metrics_token_file", p, &cause), FA_OK);
	ck_assert_ptr_null(ep_metrics_access_new(cfg, &cause));
	ck_assert_ptr_nonnull(strstr(cause, "at least 16"));
	/* The token is never in the message. */
	ck_assert_ptr_null(strstr(cause, "tooshort"));
	free(cause);
	config_free(cfg);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("metrics_access");
	TCase *tc = tcase_create("metrics_access");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_default_loopback);
	tcase_add_test(tc, test_allow_only);
	tcase_add_test(tc, test_token_only);
	tcase_add_test(tc, test_both_must_match);
	tcase_add_test(tc, test_neither_is_nobody);
	tcase_add_test(tc, test_bad_token_files);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
