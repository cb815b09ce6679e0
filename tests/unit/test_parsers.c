/*
 * test_parsers.c -- Check suite for the request parsers: b64.c against the
 * RFC 4648 vectors and every kind of non-canonical input, form.c against
 * RFC 6749 form bodies and their abuses, httpauth.c against Basic and Bearer
 * credentials well and badly formed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "core/b64.h"
#include "core/fastauth.h"
#include "http/form.h"
#include "http/httpauth.h"
#include "http/tokenlist.h"

/* --- b64 ------------------------------------------------------------------ */

/* RFC 4648 §10. */
static const struct {
	const char	*plain, *b64, *b64url;
} vectors[] = {
	{ "", "", "" },
	{ "f", "Zg==", "Zg" },
	{ "fo", "Zm8=", "Zm8" },
	{ "foo", "Zm9v", "Zm9v" },
	{ "foob", "Zm9vYg==", "Zm9vYg" },
	{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
	{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
};

START_TEST(b64_rfc4648_vectors)
{
	size_t i;

	for (i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		const char *p = vectors[i].plain;
		size_t n = strlen(p), len = 99;
		char enc[32];
		uint8_t dec[32];

		ck_assert_uint_eq(b64_encode((const uint8_t *)p, n, enc),
		    B64_ENCLEN(n));
		ck_assert_str_eq(enc, vectors[i].b64);
		ck_assert_uint_eq(b64url_encode((const uint8_t *)p, n, enc),
		    B64URL_ENCLEN(n));
		ck_assert_str_eq(enc, vectors[i].b64url);

		ck_assert_int_eq(b64_decode(vectors[i].b64,
		    strlen(vectors[i].b64), dec, sizeof dec, &len), FA_OK);
		ck_assert_uint_eq(len, n);
		ck_assert(memcmp(dec, p, n) == 0);
		len = 99;
		ck_assert_int_eq(b64url_decode(vectors[i].b64url,
		    strlen(vectors[i].b64url), dec, sizeof dec, &len), FA_OK);
		ck_assert_uint_eq(len, n);
		ck_assert(memcmp(dec, p, n) == 0);
		ck_assert_uint_le(n, B64_DECLEN(strlen(vectors[i].b64)));
	}
}
END_TEST

START_TEST(b64_alphabets)
{
	/* 0xfb 0xff 0xbf uses both alphabet-specific characters. */
	static const uint8_t bin[] = { 0xfb, 0xff, 0xbf, 0x00, 0x10 };
	char enc[16];
	uint8_t dec[16];
	size_t len;

	b64_encode(bin, sizeof bin, enc);
	ck_assert_str_eq(enc, "+/+/ABA=");
	b64url_encode(bin, sizeof bin, enc);
	ck_assert_str_eq(enc, "-_-_ABA");
	ck_assert_int_eq(b64_decode("+/+/ABA=", 8, dec, sizeof dec, &len), FA_OK);
	ck_assert(len == sizeof bin && memcmp(dec, bin, len) == 0);
	ck_assert_int_eq(b64url_decode("-_-_ABA", 7, dec, sizeof dec, &len), FA_OK);
	ck_assert(len == sizeof bin && memcmp(dec, bin, len) == 0);
	/* Each alphabet refuses the other's characters. */
	ck_assert_int_eq(b64_decode("-_-_ABA=", 8, dec, sizeof dec, &len), FA_ERR);
	ck_assert_int_eq(b64url_decode("+/+/ABA", 7, dec, sizeof dec, &len), FA_ERR);
}
END_TEST

START_TEST(b64_every_length_round_trips)
{
	uint8_t bin[64], dec[64];
	char enc[128];
	size_t n, i, len, el;

	for (i = 0; i < sizeof bin; i++)
		bin[i] = (uint8_t)(i * 37 + 11);
	for (n = 0; n <= sizeof bin; n++) {
		el = b64_encode(bin, n, enc);
		ck_assert_int_eq(b64_decode(enc, el, dec, n, &len), FA_OK);
		ck_assert(len == n && memcmp(dec, bin, n) == 0);
		if (n > 0)	/* one byte short of room */
			ck_assert_int_eq(b64_decode(enc, el, dec, n - 1, &len),
			    FA_ERR);
		el = b64url_encode(bin, n, enc);
		ck_assert_int_eq(b64url_decode(enc, el, dec, n, &len), FA_OK);
		ck_assert(len == n && memcmp(dec, bin, n) == 0);
		if (n > 0)
			ck_assert_int_eq(b64url_decode(enc, el, dec, n - 1,
			    &len), FA_ERR);
	}
}
END_TEST

START_TEST(b64_strict_rejects)
{
	static const char *bad[] = {
		"Zg=",		/* missing padding */
		"Zg",		/* no padding at all */
		"Zh==",		/* non-zero trailing bits */
		"Zm9=",		/* non-zero trailing bits, one '=' */
		"Z===",		/* one character of data */
		"====",
		"Zm=v",		/* padding in the middle */
		"Zg==Zg==",	/* padding before more data */
		"Zm9v=",
		"Zm9v ",	/* whitespace */
		"Zm9\nv",
		"Zm9*",		/* outside the alphabet */
		"Zm9-",		/* base64url character */
		"Zm9_",
		"Zm9\xc3",
	};
	uint8_t dec[16];
	size_t i, len;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(b64_decode(bad[i], strlen(bad[i]), dec, sizeof dec,
		    &len) == FA_ERR, "accepted \"%s\"", bad[i]);
	/* An embedded NUL is a bad character, not an end. */
	ck_assert_int_eq(b64_decode("Zm\0v", 4, dec, sizeof dec, &len), FA_ERR);
}
END_TEST

START_TEST(b64url_strict_rejects)
{
	static const char *bad[] = {
		"Zg==",		/* padding is not base64url */
		"Zg=",
		"Zm8=",
		"Z",		/* 6 bits */
		"Zm9vY",
		"Zh",		/* non-zero trailing bits */
		"Zm9",
		"Zm9+",		/* standard alphabet */
		"Zm9/",
		"Zm 9",
		"Zm9v.",
	};
	uint8_t dec[16];
	size_t i, len;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(b64url_decode(bad[i], strlen(bad[i]), dec,
		    sizeof dec, &len) == FA_ERR, "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(b64_outcap)
{
	uint8_t dec[8];
	size_t len = 99;

	memset(dec, 0xee, sizeof dec);
	/* "foobar" needs 6 bytes: 5 is refused before anything is written. */
	ck_assert_int_eq(b64_decode("Zm9vYmFy", 8, dec, 5, &len), FA_ERR);
	ck_assert_int_eq(b64url_decode("Zm9vYmFy", 8, dec, 5, &len), FA_ERR);
	ck_assert_uint_eq(dec[0], 0xee);
	ck_assert_uint_eq(len, 99);
	ck_assert_int_eq(b64_decode("Zm9vYmFy", 8, dec, 6, &len), FA_OK);
	ck_assert_uint_eq(len, 6);
	ck_assert_int_eq(b64_decode("", 0, dec, 0, &len), FA_OK);
	ck_assert_uint_eq(len, 0);
}
END_TEST

/* --- form ----------------------------------------------------------------- */

static struct form *
parse(const char *s, int max, enum form_error *err, char **dup)
{
	return form_parse(s, strlen(s), max, err, dup);
}

START_TEST(form_plain)
{
	enum form_error err = -1;
	char *dup = (char *)"x";
	struct form *f;

	f = parse("grant_type=client_credentials&scope=read&client_id=abc",
	    32, &err, &dup);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(err, FORM_OK);
	ck_assert_ptr_null(dup);
	ck_assert_int_eq(form_count(f), 3);
	ck_assert_str_eq(form_get(f, "grant_type"), "client_credentials");
	ck_assert_str_eq(form_get(f, "scope"), "read");
	ck_assert_str_eq(form_get(f, "client_id"), "abc");
	ck_assert_ptr_null(form_get(f, "client_secret"));
	ck_assert_ptr_null(form_get(f, "scop"));
	ck_assert_str_eq(form_name(f, 0), "grant_type");
	ck_assert_str_eq(form_value(f, 2), "abc");
	ck_assert_ptr_null(form_name(f, 3));
	ck_assert_ptr_null(form_value(f, -1));
	form_free(f);
}
END_TEST

START_TEST(form_escapes)
{
	enum form_error err;
	struct form *f;

	f = parse("scope=read+write&redirect_uri=https%3A%2F%2Fa.example%2fcb"
	    "&x%5By%5D=%e2%82%AC&sp=%20+%2B", 32, &err, NULL);
	ck_assert_ptr_nonnull(f);
	ck_assert_str_eq(form_get(f, "scope"), "read write");
	ck_assert_str_eq(form_get(f, "redirect_uri"), "https://a.example/cb");
	ck_assert_str_eq(form_get(f, "x[y]"), "\xe2\x82\xac");
	ck_assert_str_eq(form_get(f, "sp"), "  +");
	form_free(f);

	/* '=' inside a value is data; only the first one splits. */
	f = parse("a==b=&c=%3D", 32, &err, NULL);
	ck_assert_ptr_nonnull(f);
	ck_assert_str_eq(form_get(f, "a"), "=b=");
	ck_assert_str_eq(form_get(f, "c"), "=");
	form_free(f);
}
END_TEST

START_TEST(form_bad_escapes)
{
	static const char *bad[] = {
		"a=%", "a=%4", "a=%zz", "a=%4g", "a=%g4", "a%=1", "%=1",
		"a=1&b=%%41", "a=%00", "a%00b=1", "a=%0",
	};
	enum form_error err;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = FORM_OK;
		ck_assert_msg(parse(bad[i], 32, &err, NULL) == NULL,
		    "accepted \"%s\"", bad[i]);
		ck_assert_int_eq(err, FORM_ERR_SYNTAX);
	}
	/* A raw NUL byte is refused like an encoded one. */
	ck_assert_ptr_null(form_parse("a=b\0c", 5, 32, &err, NULL));
	ck_assert_int_eq(err, FORM_ERR_SYNTAX);
}
END_TEST

START_TEST(form_duplicates)
{
	enum form_error err;
	char *dup = NULL;

	ck_assert_ptr_null(parse("scope=a&client_id=x&scope=b", 32, &err, &dup));
	ck_assert_int_eq(err, FORM_ERR_DUPLICATE);
	ck_assert_str_eq(dup, "scope");
	free(dup);
	dup = NULL;

	/* Equal once decoded is equal. */
	ck_assert_ptr_null(parse("client+id=1&client%20id=2", 32, &err, &dup));
	ck_assert_int_eq(err, FORM_ERR_DUPLICATE);
	ck_assert_str_eq(dup, "client id");
	free(dup);
	dup = NULL;

	/* The first repeat in order of appearance is the one named. */
	ck_assert_ptr_null(parse("zz=1&b=1&zz=2&b=2&a=1&a=2", 32, &err, &dup));
	ck_assert_int_eq(err, FORM_ERR_DUPLICATE);
	ck_assert_str_eq(dup, "zz");
	free(dup);

	/* A repeat without '=' counts; NULL dupname is allowed. */
	ck_assert_ptr_null(parse("a&a=", 32, &err, NULL));
	ck_assert_int_eq(err, FORM_ERR_DUPLICATE);
}
END_TEST

START_TEST(form_too_many)
{
	enum form_error err;
	struct form *f;

	f = parse("a=1&b=2&c=3", 3, &err, NULL);
	ck_assert_ptr_nonnull(f);
	form_free(f);
	ck_assert_ptr_null(parse("a=1&b=2&c=3&d=4", 3, &err, NULL));
	ck_assert_int_eq(err, FORM_ERR_TOO_MANY);
	/* Empty segments do not count. */
	f = parse("&&a=1&&b=2&&c=3&&", 3, &err, NULL);
	ck_assert_ptr_nonnull(f);
	form_free(f);
	ck_assert_ptr_null(parse("a=1", 0, &err, NULL));
	ck_assert_int_eq(err, FORM_ERR_TOO_MANY);
}
END_TEST

START_TEST(form_empty_segments_and_names)
{
	enum form_error err;
	struct form *f;

	f = parse("a=1&&b=2&", 32, &err, NULL);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(form_count(f), 2);
	ck_assert_str_eq(form_get(f, "b"), "2");
	form_free(f);

	f = parse("", 32, &err, NULL);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(err, FORM_OK);
	ck_assert_int_eq(form_count(f), 0);
	form_free(f);
	f = form_parse(NULL, 0, 32, &err, NULL);
	ck_assert_ptr_nonnull(f);
	form_free(f);

	ck_assert_ptr_null(parse("=x", 32, &err, NULL));
	ck_assert_int_eq(err, FORM_ERR_SYNTAX);
	ck_assert_ptr_null(parse("a=1&=", 32, &err, NULL));
	ck_assert_int_eq(err, FORM_ERR_SYNTAX);
}
END_TEST

START_TEST(form_no_equals)
{
	enum form_error err;
	struct form *f;

	f = parse("flag&a=&b", 32, &err, NULL);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(form_count(f), 3);
	ck_assert_str_eq(form_get(f, "flag"), "");
	ck_assert_str_eq(form_get(f, "a"), "");
	ck_assert_str_eq(form_get(f, "b"), "");
	form_free(f);
	form_free(NULL);
}
END_TEST

START_TEST(form_independent_of_input)
{
	char body[] = "client_secret=s3cr%21t&scope=x";
	enum form_error err;
	struct form *f;

	f = form_parse(body, strlen(body), 32, &err, NULL);
	ck_assert_ptr_nonnull(f);
	memset(body, 'X', strlen(body));
	ck_assert_str_eq(form_get(f, "client_secret"), "s3cr!t");
	ck_assert_str_eq(form_get(f, "scope"), "x");
	form_free(f);
}
END_TEST

START_TEST(form_urldecode_direct)
{
	char out[32];

	ck_assert_int_eq(form_urldecode("a+b%21", 6, out), 4);
	ck_assert_str_eq(out, "a b!");
	ck_assert_int_eq(form_urldecode("", 0, out), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(form_urldecode("%2", 2, out), FA_ERR);
	ck_assert_int_eq(form_urldecode("%00", 3, out), FA_ERR);
	/* n bounds the read: "%41" cut after two bytes is a bad escape. */
	ck_assert_int_eq(form_urldecode("%41", 2, out), FA_ERR);
}
END_TEST

/* --- httpauth ------------------------------------------------------------- */

/* "Basic " + base64(s). */
static char *
basic(const char *scheme, const char *s)
{
	static char hdr[1024];
	size_t n = (size_t)snprintf(hdr, sizeof hdr, "%s ", scheme);

	b64_encode((const uint8_t *)s, strlen(s), hdr + n);
	return hdr;
}

START_TEST(basic_round_trip)
{
	char id[FA_CLIENT_ID_MAX + 1], secret[128];

	ck_assert_int_eq(httpauth_basic(basic("Basic", "svc-reports:s3cret"),
	    id, sizeof id, secret, sizeof secret), FA_OK);
	ck_assert_str_eq(id, "svc-reports");
	ck_assert_str_eq(secret, "s3cret");

	/* RFC 6749 §2.3.1: ':' and '%' in id and secret are url-encoded. */
	ck_assert_int_eq(httpauth_basic(basic("Basic",
	    "urn%3Aexample%3Aclient:p%25ss%3Aw+rd%2B"), id, sizeof id, secret,
	    sizeof secret), FA_OK);
	ck_assert_str_eq(id, "urn:example:client");
	ck_assert_str_eq(secret, "p%ss:w rd+");

	/* The first ':' splits; later ones are the secret's. */
	ck_assert_int_eq(httpauth_basic(basic("Basic", "a:b:c"), id, sizeof id,
	    secret, sizeof secret), FA_OK);
	ck_assert_str_eq(id, "a");
	ck_assert_str_eq(secret, "b:c");

	/* An empty secret is the endpoint's business, not the parser's. */
	ck_assert_int_eq(httpauth_basic(basic("Basic", "a:"), id, sizeof id,
	    secret, sizeof secret), FA_OK);
	ck_assert_str_eq(secret, "");
}
END_TEST

START_TEST(basic_scheme_and_spaces)
{
	char id[32], secret[32];

	ck_assert_int_eq(httpauth_basic(basic("basic", "a:b"), id, sizeof id,
	    secret, sizeof secret), FA_OK);
	ck_assert_int_eq(httpauth_basic(basic("BASIC", "a:b"), id, sizeof id,
	    secret, sizeof secret), FA_OK);
	ck_assert_int_eq(httpauth_basic("Basic    YTpi", id, sizeof id, secret,
	    sizeof secret), FA_OK);
	ck_assert_int_eq(httpauth_basic("Basic YTpi \t", id, sizeof id, secret,
	    sizeof secret), FA_OK);
	ck_assert_int_eq(httpauth_basic("BasicYTpi", id, sizeof id, secret,
	    sizeof secret), FA_ERR);
	ck_assert_int_eq(httpauth_basic("Basic", id, sizeof id, secret,
	    sizeof secret), FA_ERR);
	ck_assert_int_eq(httpauth_basic("Basic ", id, sizeof id, secret,
	    sizeof secret), FA_ERR);
	ck_assert_int_eq(httpauth_basic("Bearer YTpi", id, sizeof id, secret,
	    sizeof secret), FA_ERR);
	ck_assert_int_eq(httpauth_basic(NULL, id, sizeof id, secret,
	    sizeof secret), FA_ERR);
	ck_assert_int_eq(httpauth_basic("Basic YTpix", id, sizeof id, secret,
	    sizeof secret), FA_ERR);
}
END_TEST

START_TEST(basic_rejects)
{
	static const char *bad[] = {
		"Basic YWJj",		/* "abc": no colon */
		"Basic OmI=",		/* ":b": empty id */
		"Basic YTpi=",		/* bad length */
		"Basic YTp",		/* missing padding */
		"Basic YT pi",		/* space inside */
		"Basic YTpi*",
		"Basic YS1i\xff",
		"Basic YTpiYQ=x",
	};
	char id[32], secret[32];
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(id, 'Q', sizeof id);
		memset(secret, 'Q', sizeof secret);
		ck_assert_msg(httpauth_basic(bad[i], id, sizeof id, secret,
		    sizeof secret) == FA_ERR, "accepted \"%s\"", bad[i]);
		ck_assert_msg(id[0] == 0 && id[sizeof id - 1] == 0 &&
		    secret[0] == 0 && secret[sizeof secret - 1] == 0,
		    "outputs not wiped for \"%s\"", bad[i]);
	}
	/* Bad url-encoding and NUL bytes, before or after decoding. */
	ck_assert_int_eq(httpauth_basic(basic("Basic", "a%zz:b"), id, sizeof id,
	    secret, sizeof secret), FA_ERR);
	ck_assert_int_eq(httpauth_basic(basic("Basic", "a:b%00"), id, sizeof id,
	    secret, sizeof secret), FA_ERR);
	ck_assert_int_eq(httpauth_basic(basic("Basic", "a:b%"), id, sizeof id,
	    secret, sizeof secret), FA_ERR);
	/* base64("a:\0b") */
	ck_assert_int_eq(httpauth_basic("Basic YToAYg==", id, sizeof id,
	    secret, sizeof secret), FA_ERR);
	ck_assert_int_eq(secret[0], 0);
}
END_TEST

START_TEST(basic_too_long)
{
	char id[8], secret[8], big[600], *hdr;

	/* Exactly fits: 7 + NUL each. */
	ck_assert_int_eq(httpauth_basic(basic("Basic", "1234567:abcdefg"), id,
	    sizeof id, secret, sizeof secret), FA_OK);
	ck_assert_str_eq(id, "1234567");
	ck_assert_str_eq(secret, "abcdefg");
	/* Decoded length counts, not encoded: %41 is one byte. */
	ck_assert_int_eq(httpauth_basic(basic("Basic",
	    "%41%42%43%44%45%46%47:x"), id, sizeof id, secret, sizeof secret),
	    FA_OK);
	ck_assert_str_eq(id, "ABCDEFG");
	ck_assert_int_eq(httpauth_basic(basic("Basic", "12345678:a"), id,
	    sizeof id, secret, sizeof secret), FA_ERR);
	ck_assert_int_eq(id[0], 0);
	ck_assert_int_eq(httpauth_basic(basic("Basic", "a:abcdefgh"), id,
	    sizeof id, secret, sizeof secret), FA_ERR);
	ck_assert_int_eq(secret[0], 0);

	/* A long credential takes the heap path in the classifier. */
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	big[3] = ':';
	hdr = basic("Basic", big);
	ck_assert_int_eq(httpauth_scheme(hdr), HTTPAUTH_BASIC);
	ck_assert_int_eq(httpauth_basic(hdr, id, sizeof id, secret,
	    sizeof secret), FA_ERR);
	{
		char bigsecret[sizeof big];

		ck_assert_int_eq(httpauth_basic(hdr, id, sizeof id, bigsecret,
		    sizeof bigsecret), FA_OK);
		ck_assert_uint_eq(strlen(bigsecret), sizeof big - 5);
	}
}
END_TEST

START_TEST(bearer_valid)
{
	const char *tok;
	size_t len;

	ck_assert_int_eq(httpauth_bearer("Bearer mF_9.B5f-4.1JqM", &tok, &len),
	    FA_OK);
	ck_assert_uint_eq(len, 15);
	ck_assert(strncmp(tok, "mF_9.B5f-4.1JqM", len) == 0);
	ck_assert_int_eq(httpauth_bearer("bearer  a~b+c/d==  \t", &tok, &len),
	    FA_OK);
	ck_assert(len == 9 && strncmp(tok, "a~b+c/d==", len) == 0);
	ck_assert_int_eq(httpauth_bearer("BEARER x", &tok, &len), FA_OK);
	ck_assert_uint_eq(len, 1);
}
END_TEST

START_TEST(bearer_invalid)
{
	static const char *bad[] = {
		"Bearer",
		"Bearer ",
		"Bearer    ",
		"Bearer =abc",		/* '=' only at the end */
		"Bearer ab=c",
		"Bearer a b",		/* trailing garbage */
		"Bearer abc,",
		"Bearer abc\"",
		"Bearer ab!c",
		"Bearer ab\xc3\xa9",
		"Bearer abc\r\n",
		"Bearerabc",
		"Bearer\tabc",
		"Basic YTpi",
		"",
	};
	const char *tok = (const char *)1;
	size_t i, len = 1;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(httpauth_bearer(bad[i], &tok, &len) == FA_ERR,
		    "accepted \"%s\"", bad[i]);
		ck_assert(tok == NULL && len == 0);
	}
	ck_assert_int_eq(httpauth_bearer(NULL, &tok, &len), FA_ERR);
}
END_TEST

/* The Authorizer's reading: a token, a broken Bearer, or nothing offered. */
START_TEST(bearer_offered)
{
	const char *tok;
	size_t len;

	ck_assert_int_eq(httpauth_bearer_offered("Bearer abc.def", &tok, &len),
	    HTTPAUTH_BEARER);
	ck_assert_uint_eq(len, 7);
	ck_assert_int_eq(strncmp(tok, "abc.def", len), 0);
	ck_assert_int_eq(httpauth_bearer_offered("bearer two words", &tok, &len),
	    HTTPAUTH_MALFORMED);
	ck_assert_ptr_null(tok);
	ck_assert_int_eq(httpauth_bearer_offered("Bearer", &tok, &len), HTTPAUTH_MALFORMED);
	ck_assert_int_eq(httpauth_bearer_offered("Bearer   ", &tok, &len), HTTPAUTH_MALFORMED);
	ck_assert_int_eq(httpauth_bearer_offered(NULL, &tok, &len), HTTPAUTH_NONE);
	ck_assert_int_eq(httpauth_bearer_offered("", &tok, &len), HTTPAUTH_NONE);
	ck_assert_int_eq(httpauth_bearer_offered("Basic YTpi", &tok, &len), HTTPAUTH_NONE);
	ck_assert_int_eq(httpauth_bearer_offered("BearerX abc", &tok, &len), HTTPAUTH_NONE);
	ck_assert_int_eq(httpauth_bearer_offered("Digest x=1", &tok, &len), HTTPAUTH_NONE);
	ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(scheme_classification)
{
	ck_assert_int_eq(httpauth_scheme(NULL), HTTPAUTH_NONE);
	ck_assert_int_eq(httpauth_scheme(""), HTTPAUTH_NONE);
	ck_assert_int_eq(httpauth_scheme("  \t"), HTTPAUTH_NONE);
	ck_assert_int_eq(httpauth_scheme("Basic YTpi"), HTTPAUTH_BASIC);
	ck_assert_int_eq(httpauth_scheme("bAsIc YTpi"), HTTPAUTH_BASIC);
	ck_assert_int_eq(httpauth_scheme("Bearer abc"), HTTPAUTH_BEARER);
	ck_assert_int_eq(httpauth_scheme("bearer abc=="), HTTPAUTH_BEARER);
	ck_assert_int_eq(httpauth_scheme("Basic"), HTTPAUTH_MALFORMED);
	ck_assert_int_eq(httpauth_scheme("Basic YWJj"), HTTPAUTH_MALFORMED);
	ck_assert_int_eq(httpauth_scheme("Basic !!!!"), HTTPAUTH_MALFORMED);
	ck_assert_int_eq(httpauth_scheme("Bearer"), HTTPAUTH_MALFORMED);
	ck_assert_int_eq(httpauth_scheme("Bearer a b"), HTTPAUTH_MALFORMED);
	ck_assert_int_eq(httpauth_scheme("Digest username=\"x\""),
	    HTTPAUTH_OTHER);
	ck_assert_int_eq(httpauth_scheme("Negotiate YTpi"), HTTPAUTH_OTHER);
	ck_assert_int_eq(httpauth_scheme("Basically YTpi"), HTTPAUTH_OTHER);
	ck_assert_int_eq(httpauth_scheme("BearerX abc"), HTTPAUTH_OTHER);
}
END_TEST

/* --- tokenlist (batch introspection bodies) --------------------------------- */

/* Parse s (copied) with limit max; returns the count or -1 (err in *e). */
static int
tl(const char *s, int max, struct tokenlist_item *items, char *copy, enum tokenlist_error *e)
{
	size_t n = strlen(s), where;
	int count;

	memcpy(copy, s, n + 1);
	if (tokenlist_parse(copy, n, items, max, &count, e, &where) != FA_OK) {
		ck_assert_uint_le(where, n);
		return -1;
	}
	return count;
}

START_TEST(tokenlist_valid)
{
	struct tokenlist_item it[8];
	enum tokenlist_error e;
	char copy[256];

	ck_assert_int_eq(tl("[]", 8, it, copy, &e), 0);
	ck_assert_int_eq(tl(" \t\r\n[ \n]\n ", 8, it, copy, &e), 0);
	ck_assert_int_eq(tl("[\"fa1.abc\", \"\",\"far1.x\"]", 8, it, copy, &e), 3);
	ck_assert_str_eq(it[0].s, "fa1.abc");
	ck_assert_uint_eq(it[0].len, 7);
	ck_assert_str_eq(it[1].s, "");
	ck_assert_str_eq(it[2].s, "far1.x");
	ck_assert_int_eq(tl("[\"a\\\"b\\\\c\\/d\\n\\t\\u0041\\u00e9\\ud83d\\ude00\"]", 8, it,
	    copy, &e), 1);
	ck_assert_str_eq(it[0].s, "a\"b\\c/d\n\tA\xc3\xa9\xf0\x9f\x98\x80");
	ck_assert_int_eq(tl("[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]", 8, it, copy, &e), 1);
	ck_assert_int_eq(e, TOKENLIST_OK);
}
END_TEST

START_TEST(tokenlist_rejects)
{
	static const char *bad[] = {
		"", " ", "[", "]", "[,]", "[\"a\",]", "[\"a\" \"b\"]", "[\"a\"] x",
		"[\"a\"]]", "{\"a\":1}", "\"a\"", "[1]", "[null]", "[[\"a\"]]",
		"[\"a]", "[\"a\\\"]", "[\"\\x\"]", "[\"\\u12\"]", "[\"\\u00g0\"]",
		"[\"\\u0000\"]", "[\"\\ud800\"]", "[\"\\udc00\"]", "[\"\\ud800\\u0041\"]",
		"[\"\x01\"]", "[\"\x7f\x80\"]", "[\"\xc0\xaf\"]", "[\"\xed\xa0\x80\"]",
		"[\"\xf4\x90\x80\x80\"]", "[\"\xe2\x82\"]", "['a']",
	};
	struct tokenlist_item it[8];
	enum tokenlist_error e;
	char copy[256];
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(tl(bad[i], 8, it, copy, &e) == -1, "accepted %s", bad[i]);
		ck_assert_int_eq(e, TOKENLIST_ERR_SYNTAX);
	}
}
END_TEST

START_TEST(tokenlist_too_many)
{
	struct tokenlist_item it[3];
	enum tokenlist_error e;
	char copy[256];

	ck_assert_int_eq(tl("[\"a\",\"b\",\"c\"]", 3, it, copy, &e), 3);
	ck_assert_int_eq(tl("[\"a\",\"b\",\"c\",\"d\"]", 3, it, copy, &e), -1);
	ck_assert_int_eq(e, TOKENLIST_ERR_TOO_MANY);
	ck_assert_int_eq(tl("[\"a\"]", 1, it, copy, &e), 1);
	ck_assert_int_eq(tl("[\"a\",\"b\"]", 1, it, copy, &e), -1);
	ck_assert_int_eq(e, TOKENLIST_ERR_TOO_MANY);
}
END_TEST

/* The input need not be NUL-terminated: nothing past len is read. */
START_TEST(tokenlist_exact_length)
{
	struct tokenlist_item it[2];
	enum tokenlist_error e;
	char *p = malloc(5);
	int n;

	memcpy(p, "[\"a\"]", 5);
	ck_assert_int_eq(tokenlist_parse(p, 5, it, 2, &n, &e, NULL), FA_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(it[0].s, "a");
	memcpy(p, "[\"ab\"", 5);
	ck_assert_int_eq(tokenlist_parse(p, 5, it, 2, &n, &e, NULL), FA_ERR);
	free(p);
}
END_TEST

static Suite *
parsers_suite(void)
{
	Suite *s = suite_create("parsers");
	TCase *tc;

	tc = tcase_create("b64");
	tcase_add_test(tc, b64_rfc4648_vectors);
	tcase_add_test(tc, b64_alphabets);
	tcase_add_test(tc, b64_every_length_round_trips);
	tcase_add_test(tc, b64_strict_rejects);
	tcase_add_test(tc, b64url_strict_rejects);
	tcase_add_test(tc, b64_outcap);
	suite_add_tcase(s, tc);

	tc = tcase_create("form");
	tcase_add_test(tc, form_plain);
	tcase_add_test(tc, form_escapes);
	tcase_add_test(tc, form_bad_escapes);
	tcase_add_test(tc, form_duplicates);
	tcase_add_test(tc, form_too_many);
	tcase_add_test(tc, form_empty_segments_and_names);
	tcase_add_test(tc, form_no_equals);
	tcase_add_test(tc, form_independent_of_input);
	tcase_add_test(tc, form_urldecode_direct);
	suite_add_tcase(s, tc);

	tc = tcase_create("httpauth");
	tcase_add_test(tc, basic_round_trip);
	tcase_add_test(tc, basic_scheme_and_spaces);
	tcase_add_test(tc, basic_rejects);
	tcase_add_test(tc, basic_too_long);
	tcase_add_test(tc, bearer_valid);
	tcase_add_test(tc, bearer_invalid);
	tcase_add_test(tc, bearer_offered);
	tcase_add_test(tc, scheme_classification);
	suite_add_tcase(s, tc);

	tc = tcase_create("tokenlist");
	tcase_add_test(tc, tokenlist_valid);
	tcase_add_test(tc, tokenlist_rejects);
	tcase_add_test(tc, tokenlist_too_many);
	tcase_add_test(tc, tokenlist_exact_length);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(parsers_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
