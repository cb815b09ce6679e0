/*
 * test_load.c -- Check suite for fastauth-load's own modules: the log-linear
 * histogram (bucket layout, quantiles against exact ranks, merging), the
 * --distribution parser (accepted and refused specs, draws), the HTTP
 * response parser (Content-Length, chunked, until close, interim 1xx,
 * keep-alive, limits, any split of the input) and the request writer, and
 * the scenario helpers (active:true detection, form escaping).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "core/buf.h"
#include "core/fastauth.h"
#include "load/dist.h"
#include "load/hist.h"
#include "load/httpc.h"
#include "load/scenario.h"

START_TEST(hist_layout)
{
	uint64_t v, prev_high = 0;
	unsigned idx, prev = 0;

	/* Exact below 256; every bucket's highest value maps back to it. */
	for (v = 0; v < 256; v++)
		ck_assert_uint_eq(hist_index(v), v);
	for (v = 1; v < ((uint64_t)1 << 30); v += v / 7 + 1) {
		idx = hist_index(v);
		ck_assert_uint_ge(idx, prev);
		ck_assert_uint_lt(idx, HIST_BUCKETS);
		ck_assert_uint_ge(hist_bucket_high(idx), v);
		/* Relative error of the bucket bound under 1%. */
		ck_assert(hist_bucket_high(idx) - v <= v / 100 + 1);
		ck_assert_uint_eq(hist_index(hist_bucket_high(idx)), idx);
		prev = idx;
	}
	for (idx = 1; idx < HIST_BUCKETS; idx++) {
		ck_assert_uint_gt(hist_bucket_high(idx), prev_high);
		prev_high = hist_bucket_high(idx);
	}
	/* Values past the top are clamped into the last bucket. */
	ck_assert_uint_eq(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
}
END_TEST

START_TEST(hist_quantiles)
{
	struct hist a, b;
	uint64_t v, q;

	hist_init(&a);
	ck_assert_uint_eq(hist_quantile(&a, 0.99), 0);
	for (v = 1; v <= 100000; v++)
		hist_record(&a, v);
	/* p50 of 1..100000 is 50000, p99 99000: within the 0.8% bucket width. */
	q = hist_quantile(&a, 0.50);
	ck_assert(q >= 50000 && q <= 50000 + 50000 / 128 + 1);
	q = hist_quantile(&a, 0.99);
	ck_assert(q >= 99000 && q <= 99000 + 99000 / 128 + 1);
	ck_assert_uint_eq(hist_quantile(&a, 1.0), 100000);
	ck_assert_uint_eq(a.min, 1);
	ck_assert_uint_eq(a.max, 100000);
	ck_assert(hist_mean(&a) > 50000.4 && hist_mean(&a) < 50000.6);

	/* One outlier in 1000: p99 ignores it, max shows it. */
	hist_init(&a);
	hist_init(&b);
	for (v = 0; v < 999; v++)
		hist_record(v % 2 ? &a : &b, 100);
	hist_record(&b, 5000000);
	hist_merge(&a, &b);
	ck_assert_uint_eq(a.total, 1000);
	ck_assert_uint_eq(hist_quantile(&a, 0.99), 100);
	ck_assert_uint_eq(hist_quantile(&a, 0.999), 100);
	ck_assert_uint_eq(a.max, 5000000);
	ck_assert_uint_eq(a.min, 100);
}
END_TEST

static void
dist_bad(const char *spec, const char *needle)
{
	struct dist d;
	char *cause = NULL;

	ck_assert_msg(dist_parse(spec, &d, &cause) == FA_ERR, "accepted \"%s\"", spec);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, needle) != NULL, "\"%s\": cause \"%s\" lacks \"%s\"",
	    spec, cause, needle);
	free(cause);
}

START_TEST(dist_specs)
{
	struct dist d;
	char *cause = NULL;
	int counts[DIST_NOPS] = { 0 };
	uint32_t r;

	ck_assert_int_eq(dist_parse("token:30,introspect:60,userinfo:10", &d, &cause), FA_OK);
	ck_assert_uint_eq(d.total, 100);
	ck_assert_uint_eq(d.weight[DIST_TOKEN], 30);
	ck_assert_uint_eq(d.weight[DIST_INTROSPECT], 60);
	ck_assert_uint_eq(d.weight[DIST_USERINFO], 10);
	ck_assert_uint_eq(d.weight[DIST_PASSWORD], 0);
	for (r = 0; r < 100; r++)
		counts[dist_pick(&d, r)]++;
	ck_assert_int_eq(counts[DIST_TOKEN], 30);
	ck_assert_int_eq(counts[DIST_INTROSPECT], 60);
	ck_assert_int_eq(counts[DIST_USERINFO], 10);
	ck_assert_int_eq(dist_parse("refresh:1,password:0", &d, &cause), FA_OK);
	ck_assert_int_eq(dist_pick(&d, 12345), DIST_REFRESH);

	dist_bad("", "empty");
	dist_bad("token:30,", "empty item");
	dist_bad(",token:30", "empty item");
	dist_bad("token:30, introspect:60", "blanks");
	dist_bad("token:3O", "whole number");
	dist_bad("token:-1", "whole number");
	dist_bad("token:", "weight missing");
	dist_bad("token", "NAME:WEIGHT");
	dist_bad("tokens:1", "unknown operation");
	dist_bad("token:1,token:2", "twice");
	dist_bad("token:0,introspect:0", "every weight is 0");
	dist_bad("token:1000001", "above");
	dist_bad("token:99999999999999999999", "above");
}
END_TEST

/* Parse text fed in pieces of step bytes; returns the verdict. */
static enum httpc_rc
feed(struct httpc_resp *r, const char *text, size_t step)
{
	size_t n = strlen(text), off = 0, len, used;
	enum httpc_rc rc = HTTPC_MORE;

	while (off < n && rc == HTTPC_MORE) {
		len = step == 0 || n - off < step ? n - off : step;
		rc = httpc_resp_feed(r, text + off, len, &used);
		off += used;
	}
	return rc;
}

START_TEST(httpc_content_length)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "content-length: 15\r\n\r\n{\"active\":true}";
	struct httpc_resp r;
	size_t step;

	httpc_resp_init(&r, 1024);
	for (step = 0; step < 20; step++) {
		httpc_resp_reset(&r);
		ck_assert_int_eq(feed(&r, resp, step), HTTPC_DONE);
		ck_assert_int_eq(r.status, 200);
		ck_assert_int_eq(r.keep_alive, 1);
		ck_assert_str_eq(r.body.data, "{\"active\":true}");
	}
	/* Bytes past the response are not taken. */
	{
		size_t used;
		const char two[] = "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n";

		httpc_resp_reset(&r);
		ck_assert_int_eq(httpc_resp_feed(&r, two, sizeof two - 1, &used), HTTPC_DONE);
		ck_assert_uint_eq(used, strlen("HTTP/1.1 204 No Content\r\n\r\n"));
	}
	httpc_resp_free(&r);
}
END_TEST

START_TEST(httpc_chunked_and_close)
{
	struct httpc_resp r;
	size_t step;

	httpc_resp_init(&r, 1024);
	for (step = 0; step < 9; step++) {
		httpc_resp_reset(&r);
		ck_assert_int_eq(feed(&r, "HTTP/1.1 100 Continue\r\n\r\n"
		    "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n"
		    "Connection: close\r\n\r\n5\r\nhello\r\nA;x=y\r\n, world!!!\r\n0\r\n"
		    "Trailer: 1\r\n\r\n", step), HTTPC_DONE);
		ck_assert_int_eq(r.status, 400);
		ck_assert_int_eq(r.keep_alive, 0);
		ck_assert_str_eq(r.body.data, "hello, world!!!");
	}
	/* HTTP/1.0 without a length: the body ends with the connection. */
	httpc_resp_reset(&r);
	ck_assert_int_eq(feed(&r, "HTTP/1.0 200 OK\r\n\r\nall of it", 0), HTTPC_MORE);
	ck_assert_int_eq(httpc_resp_eof(&r), HTTPC_DONE);
	ck_assert_str_eq(r.body.data, "all of it");
	ck_assert_int_eq(r.keep_alive, 0);
	/* A close before the body is complete is an error. */
	httpc_resp_reset(&r);
	ck_assert_int_eq(feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 0), HTTPC_MORE);
	ck_assert_int_eq(httpc_resp_eof(&r), HTTPC_ERR);
	ck_assert_ptr_nonnull(r.err);
	httpc_resp_free(&r);
}
END_TEST

static void
httpc_bad(const char *text, size_t body_max)
{
	struct httpc_resp r;

	httpc_resp_init(&r, body_max);
	ck_assert_msg(feed(&r, text, 0) == HTTPC_ERR, "accepted: %s", text);
	ck_assert_ptr_nonnull(r.err);
	httpc_resp_free(&r);
}

START_TEST(httpc_refuses)
{
	char *big;

	httpc_bad("HTTP/2 200 OK\r\n\r\n", 100);
	httpc_bad("HTTP/1.1 20 OK\r\n\r\n", 100);
	httpc_bad("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 100);
	httpc_bad("HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n", 100);
	httpc_bad("HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", 100);
	httpc_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", 100);
	httpc_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 100);
	httpc_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", 100);
	httpc_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 100);
	httpc_bad("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", 100);
	httpc_bad("HTTP/1.0 200 OK\r\n\r\n0123456789012345678901234567890123456789", 10);
	big = malloc(HTTPC_LINE_MAX + 64);
	memset(big, 'a', HTTPC_LINE_MAX + 63);
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	big[HTTPC_LINE_MAX + 63] = '\0';
	httpc_bad(big, 100);
	free(big);
}
END_TEST

START_TEST(httpc_writer)
{
	struct buf b = BUF_INIT;

	httpc_request_begin(&b, "POST", "127.0.0.1:8080", "/auth/oauth2/token");
	httpc_request_basic(&b, "app", "s3cret");
	httpc_request_header(&b, "Content-Type", "application/x-www-form-urlencoded");
	httpc_request_end(&b, "grant_type=client_credentials", 29);
	ck_assert_str_eq(b.data, "POST /auth/oauth2/token HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
	    "Authorization: Basic YXBwOnMzY3JldA==\r\n"
	    "Content-Type: application/x-www-form-urlencoded\r\n"
	    "Content-Length: 29\r\n\r\ngrant_type=client_credentials");
	buf_reset(&b);
	httpc_request_begin(&b, "GET", "h", "/u");
	httpc_request_end(&b, NULL, 0);
	ck_assert_str_eq(b.data, "GET /u HTTP/1.1\r\nHost: h\r\n\r\n");
	buf_free(&b);
}
END_TEST

START_TEST(scenario_helpers)
{
	struct buf b = BUF_INIT;
	const char *yes[] = { "{\"active\":true}", "{ \"active\" : true, \"x\":1}",
	    "{\"scope\":\"active\",\"active\":true}" };
	const char *no[] = { "{\"active\":false}", "{}", "{\"active\":tru",
	    "{\"inactive\":1,\"active\":\"true\"}" };
	size_t i;

	for (i = 0; i < sizeof yes / sizeof yes[0]; i++)
		ck_assert_msg(scenario_active_true(yes[i], strlen(yes[i])), "%s", yes[i]);
	for (i = 0; i < sizeof no / sizeof no[0]; i++)
		ck_assert_msg(!scenario_active_true(no[i], strlen(no[i])), "%s", no[i]);
	scenario_form_escape(&b, "a b+c&d=e%f~\xc3\xa9");
	ck_assert_str_eq(b.data, "a+b%2Bc%26d%3De%25f%7E%C3%A9");
	buf_free(&b);
}
END_TEST

static Suite *
load_suite(void)
{
	Suite *s = suite_create("load");
	TCase *tc = tcase_create("load");

	tcase_add_test(tc, hist_layout);
	tcase_add_test(tc, hist_quantiles);
	tcase_add_test(tc, dist_specs);
	tcase_add_test(tc, httpc_content_length);
	tcase_add_test(tc, httpc_chunked_and_close);
	tcase_add_test(tc, httpc_refuses);
	tcase_add_test(tc, httpc_writer);
	tcase_add_test(tc, scenario_helpers);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(load_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
