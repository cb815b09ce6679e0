/*
 * test_json.c -- Check suite for json.c and buf.c: string escaping (quotes,
 * backslash, every control character, bytes from 0x7f up, embedded NULs), the
 * key/value helpers and their commas, and buffer growth, reset and wiping.
 */
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "core/buf.h"
#include "core/json.h"

/* json_string of n bytes of s, compared with want. */
static void
check_string(const char *s, size_t n, const char *want)
{
	struct buf b = BUF_INIT;

	json_quote(&b, s, n);
	ck_assert_str_eq(b.data, want);
	ck_assert_uint_eq(b.len, strlen(want));
	buf_free(&b);
}

START_TEST(json_plain)
{
	check_string("", 0, "\"\"");
	check_string("abc XYZ 019 ~{}[]/", 18, "\"abc XYZ 019 ~{}[]/\"");
}
END_TEST

START_TEST(json_quotes_and_backslash)
{
	check_string("a\"b", 3, "\"a\\\"b\"");
	check_string("a\\b", 3, "\"a\\\\b\"");
	check_string("\\\"", 2, "\"\\\\\\\"\"");
	check_string("\"", 1, "\"\\\"\"");
}
END_TEST

START_TEST(json_control_chars)
{
	char in[1], want[16];
	int c;

	check_string("\n\r\t", 3, "\"\\n\\r\\t\"");
	for (c = 0; c < 0x20; c++) {
		if (c == '\n' || c == '\r' || c == '\t')
			continue;
		in[0] = (char)c;
		snprintf(want, sizeof want, "\"\\u%04x\"", c);
		check_string(in, 1, want);
	}
	/* An embedded NUL is data, escaped, and does not end the string. */
	check_string("a\0b", 3, "\"a\\u0000b\"");
}
END_TEST

START_TEST(json_high_bytes)
{
	char in[1];
	int c;

	/* DEL is a control character: escaped. */
	check_string("\x7f", 1, "\"\\u007f\"");
	/* A lone byte >= 0x80 is never valid UTF-8: replaced, output stays JSON. */
	for (c = 0x80; c <= 0xff; c++) {
		in[0] = (char)c;
		check_string(in, 1, "\"\\ufffd\"");
	}
	/* Valid UTF-8 passes through unchanged (2, 3 and 4 byte forms). */
	check_string("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"");
	check_string("\xe2\x82\xac", 3, "\"\xe2\x82\xac\"");
	check_string("\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"");
	/* Overlong, surrogate, past U+10FFFF, truncated: each bad byte replaced. */
	check_string("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");
	check_string("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
	check_string("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	check_string("a\xc3", 2, "\"a\\ufffd\"");
}
END_TEST

START_TEST(json_kv_helpers)
{
	struct buf b = BUF_INIT;
	int first = 1;

	buf_putc(&b, '{');
	json_kv_str(&b, &first, "access_token", "a\"b");
	ck_assert_int_eq(first, 0);
	json_kv_str(&b, &first, "token_type", "Bearer");
	json_kv_int(&b, &first, "expires_in", 3600);
	json_kv_int(&b, &first, "min", LLONG_MIN);
	json_kv_int(&b, &first, "max", LLONG_MAX);
	json_kv_bool(&b, &first, "active", 1);
	json_kv_bool(&b, &first, "revoked", 0);
	json_kv_raw(&b, &first, "aud", "[\"x\",\"y\"]");
	json_kv_str(&b, &first, "k\ney", "");
	buf_putc(&b, '}');
	ck_assert_str_eq(b.data, "{\"access_token\":\"a\\\"b\","
	    "\"token_type\":\"Bearer\",\"expires_in\":3600,"
	    "\"min\":-9223372036854775808,\"max\":9223372036854775807,"
	    "\"active\":true,\"revoked\":false,\"aud\":[\"x\",\"y\"],"
	    "\"k\\ney\":\"\"}");
	buf_free(&b);
}
END_TEST

START_TEST(json_first_comma)
{
	struct buf b = BUF_INIT;
	int first = 1;

	/* Each helper alone: no comma before the first member. */
	json_kv_int(&b, &first, "a", 0);
	ck_assert_str_eq(b.data, "\"a\":0");
	buf_reset(&b);
	first = 1;
	json_kv_bool(&b, &first, "a", 1);
	json_kv_raw(&b, &first, "b", "null");
	ck_assert_str_eq(b.data, "\"a\":true,\"b\":null");
	buf_reset(&b);
	first = 1;
	json_kv_raw(&b, &first, "r", "{}");
	json_kv_str(&b, &first, "s", "t");
	ck_assert_str_eq(b.data, "\"r\":{},\"s\":\"t\"");
	buf_free(&b);
}
END_TEST

START_TEST(buf_growth)
{
	struct buf b;
	char chunk[1000];
	size_t i;

	buf_init(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	/* An empty append still yields a NUL-terminated string. */
	buf_append(&b, "", 0);
	ck_assert_ptr_nonnull(b.data);
	ck_assert_str_eq(b.data, "");
	memset(chunk, 'z', sizeof chunk);
	for (i = 0; i < 100; i++)
		buf_append(&b, chunk, sizeof chunk);
	ck_assert_uint_eq(b.len, 100000);
	ck_assert_uint_ge(b.cap, b.len + 1);
	ck_assert_int_eq(b.data[b.len], '\0');
	ck_assert_int_eq(b.data[99999], 'z');
	buf_free(&b);
	ck_assert_ptr_null(b.data);
	buf_free(NULL);
}
END_TEST

START_TEST(buf_printf_and_reserve)
{
	struct buf b = BUF_INIT;
	char *p, big[600];

	buf_puts(&b, "x=");
	buf_printf(&b, "%d,%s", 42, "y");
	ck_assert_str_eq(b.data, "x=42,y");
	/* Longer than the first allocation: vprintf must size, then write. */
	memset(big, 'q', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	buf_printf(&b, "[%s]", big);
	ck_assert_uint_eq(b.len, 6 + 2 + sizeof big - 1);
	ck_assert_int_eq(b.data[b.len - 1], ']');

	buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_str_eq(b.data, "");
	p = buf_reserve(&b, 3);
	memcpy(p, "abc", 3);
	buf_commit(&b, 2);
	ck_assert_str_eq(b.data, "ab");
	buf_putc(&b, '!');
	ck_assert_str_eq(b.data, "ab!");
	buf_free(&b);
}
END_TEST

START_TEST(buf_wipe_releases)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "secret");
	buf_wipe(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(b.cap, 0);
	buf_wipe(&b);
	buf_wipe(NULL);
	buf_reset(&b);	/* never allocated: nothing to terminate */
}
END_TEST

/* An impossible size must abort in xrealloc, not loop doubling a capacity. */
START_TEST(buf_reserve_huge_aborts)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "x");
	buf_reserve(&b, SIZE_MAX / 2 + 10);
	buf_free(&b);
}
END_TEST

static Suite *
json_suite(int forking)
{
	Suite *s = suite_create("json");
	TCase *tc;

	tc = tcase_create("json");
	tcase_add_test(tc, json_plain);
	tcase_add_test(tc, json_quotes_and_backslash);
	tcase_add_test(tc, json_control_chars);
	tcase_add_test(tc, json_high_bytes);
	tcase_add_test(tc, json_kv_helpers);
	tcase_add_test(tc, json_first_comma);
	suite_add_tcase(s, tc);

	tc = tcase_create("buf");
	tcase_add_test(tc, buf_growth);
	tcase_add_test(tc, buf_printf_and_reserve);
	tcase_add_test(tc, buf_wipe_releases);
	/* Only with fork(): the abort would end the whole run otherwise. */
	if (forking)
		tcase_add_test_raise_signal(tc, buf_reserve_huge_aborts, SIGABRT);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(NULL);
	int failed;

	srunner_add_suite(sr, json_suite(srunner_fork_status(sr) != CK_NOFORK));
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
