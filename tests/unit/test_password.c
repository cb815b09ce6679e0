/*
 * test_password.c -- Check suite for password.c: Argon2id hash and verify,
 * rehash detection, interoperability with libargon2's own encoder and verifier
 * in both directions, the length limit, strict PHC parsing (a table of
 * malformed strings and a mutation fuzzer whose every accepted input must
 * re-encode to itself), the dummy for unknown users, and the per-thread pool.
 *
 * Parameters are small (m = 256..1024 KiB, t = 1) so the suite runs under
 * valgrind; one test uses the defaults.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <argon2.h>
#include <check.h>

#include "core/fastauth.h"
#include "core/log.h"
#include "crypto/password.h"

static const struct password_params small = { .m_kib = 256, .t = 1, .p = 1,
    .max_len = 64 };
static const char pw[] = "correct horse battery staple";

static void
setup(void)
{
	/* Malformed stored hashes are logged as warnings: keep the output quiet. */
	log_open("test_password", 0, LOG_LEVEL_ERR);
}

static unsigned long
hashes_run(void)
{
	struct password_pool_stats st;

	password_pool_stats(&st);
	return st.hashes;
}

static void
hash_ok(const struct password_params *pp, const char *p, size_t n, char *out)
{
	ck_assert_int_eq(password_hash(pp, p, n, out, PASSWORD_PHC_MAX), FA_OK);
}

START_TEST(test_roundtrip)
{
	char	h1[PASSWORD_PHC_MAX], h2[PASSWORD_PHC_MAX], *e;
	int	rehash = -1;
	const char *prefix = "$argon2id$v=19$m=256,t=1,p=1$";

	hash_ok(&small, pw, strlen(pw), h1);
	ck_assert_int_eq(strncmp(h1, prefix, strlen(prefix)), 0);
	/* 16-byte salt is 22 characters, 32-byte hash 43, unpadded. */
	ck_assert_uint_eq(strlen(h1), strlen(prefix) + 22 + 1 + 43);
	e = strrchr(h1, '$');
	ck_assert_ptr_eq(e, h1 + strlen(prefix) + 22);
	ck_assert_ptr_null(strchr(h1 + strlen(prefix), '='));

	ck_assert_int_eq(password_verify(&small, h1, pw, strlen(pw), &rehash), FA_OK);
	ck_assert_int_eq(rehash, 0);
	ck_assert_int_eq(password_verify(&small, h1, "correct horse battery stapl",
	    27, &rehash), FA_DENIED);
	ck_assert_int_eq(password_verify(&small, h1, "Correct horse battery staple",
	    28, NULL), FA_DENIED);
	ck_assert_int_eq(password_verify(&small, h1, "", 0, NULL), FA_DENIED);

	/* Fresh salt each time. */
	hash_ok(&small, pw, strlen(pw), h2);
	ck_assert_str_ne(h1, h2);
	ck_assert_int_eq(password_verify(&small, h2, pw, strlen(pw), NULL), FA_OK);

	/* The empty password and bytes after a NUL count. */
	hash_ok(&small, "", 0, h1);
	ck_assert_int_eq(password_verify(&small, h1, "", 0, NULL), FA_OK);
	ck_assert_int_eq(password_verify(&small, h1, "x", 1, NULL), FA_DENIED);
	hash_ok(&small, "a\0b", 3, h1);
	ck_assert_int_eq(password_verify(&small, h1, "a\0b", 3, NULL), FA_OK);
	ck_assert_int_eq(password_verify(&small, h1, "a\0c", 3, NULL), FA_DENIED);
	ck_assert_int_eq(password_verify(&small, h1, "a", 1, NULL), FA_DENIED);
}
END_TEST

START_TEST(test_rehash)
{
	struct password_params	pp = small;
	char			h[PASSWORD_PHC_MAX], ref[PASSWORD_PHC_MAX];
	uint8_t			salt8[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	uint8_t			salt16[16] = { 9 };
	int			rehash;

	hash_ok(&small, pw, strlen(pw), h);
	pp.t = 2;
	rehash = -1;
	ck_assert_int_eq(password_verify(&pp, h, pw, strlen(pw), &rehash), FA_OK);
	ck_assert_int_eq(rehash, 1);
	/* A failed verify never asks for a rehash. */
	ck_assert_int_eq(password_verify(&pp, h, "nope", 4, &rehash), FA_DENIED);
	ck_assert_int_eq(rehash, 0);
	pp = small;
	pp.m_kib = 512;
	ck_assert_int_eq(password_verify(&pp, h, pw, strlen(pw), &rehash), FA_OK);
	ck_assert_int_eq(rehash, 1);
	pp = small;
	pp.p = 2;
	ck_assert_int_eq(password_verify(&pp, h, pw, strlen(pw), &rehash), FA_OK);
	ck_assert_int_eq(rehash, 1);
	pp = small;
	pp.max_len = 100;	/* not a hash parameter */
	ck_assert_int_eq(password_verify(&pp, h, pw, strlen(pw), &rehash), FA_OK);
	ck_assert_int_eq(rehash, 0);

	/* Argon2 version 1.0 (v=16) still verifies, and asks for a rehash. */
	ck_assert_int_eq(argon2_hash(1, 256, 1, pw, strlen(pw), salt16, 16, NULL,
	    32, ref, sizeof ref, Argon2_id, ARGON2_VERSION_10), ARGON2_OK);
	ck_assert_msg(strncmp(ref, "$argon2id$v=16$", 15) == 0, "%s", ref);
	ck_assert_int_eq(password_verify(&small, ref, pw, strlen(pw), &rehash), FA_OK);
	ck_assert_int_eq(rehash, 1);
	ck_assert_int_eq(password_verify(&small, ref, "x", 1, NULL), FA_DENIED);

	/* So does another salt or hash length. */
	ck_assert_int_eq(argon2id_hash_encoded(1, 256, 1, pw, strlen(pw), salt8, 8,
	    32, ref, sizeof ref), ARGON2_OK);
	ck_assert_int_eq(password_verify(&small, ref, pw, strlen(pw), &rehash), FA_OK);
	ck_assert_int_eq(rehash, 1);
	ck_assert_int_eq(argon2id_hash_encoded(1, 256, 1, pw, strlen(pw), salt16, 16,
	    64, ref, sizeof ref), ARGON2_OK);
	ck_assert_int_eq(password_verify(&small, ref, pw, strlen(pw), &rehash), FA_OK);
	ck_assert_int_eq(rehash, 1);
}
END_TEST

START_TEST(test_reference)
{
	struct password_params	 pp2 = { .m_kib = 256, .t = 2, .p = 2, .max_len = 64 };
	struct password_phc	 phc;
	char			 ref[PASSWORD_PHC_MAX], ours[PASSWORD_PHC_MAX];
	char			 again[PASSWORD_PHC_MAX], *cause = NULL;
	uint8_t			 salt[16];
	int			 rehash;
	size_t			 i;

	for (i = 0; i < sizeof salt; i++)
		salt[i] = (uint8_t)(i * 37 + 1);
	/* libargon2's encoder -> our verifier, and our parser is canonical for it. */
	ck_assert_int_eq(argon2id_hash_encoded(1, 256, 1, pw, strlen(pw), salt, 16,
	    32, ref, sizeof ref), ARGON2_OK);
	ck_assert_int_eq(password_verify(&small, ref, pw, strlen(pw), &rehash), FA_OK);
	ck_assert_int_eq(rehash, 0);
	ck_assert_int_eq(password_verify(&small, ref, "wrong", 5, NULL), FA_DENIED);
	ck_assert_int_eq(password_phc_parse(ref, strlen(ref), &phc, &cause), FA_OK);
	ck_assert_int_eq(password_phc_encode(&phc, again, sizeof again), FA_OK);
	ck_assert_str_eq(again, ref);

	/* Two lanes, two passes. */
	ck_assert_int_eq(argon2id_hash_encoded(2, 256, 2, pw, strlen(pw), salt, 16,
	    32, ref, sizeof ref), ARGON2_OK);
	ck_assert_int_eq(password_verify(&pp2, ref, pw, strlen(pw), &rehash), FA_OK);
	ck_assert_int_eq(rehash, 0);

	/* Our encoder -> libargon2's verifier. */
	hash_ok(&small, pw, strlen(pw), ours);
	ck_assert_int_eq(argon2id_verify(ours, pw, strlen(pw)), ARGON2_OK);
	ck_assert_int_eq(argon2id_verify(ours, "wrong", 5), ARGON2_VERIFY_MISMATCH);
	hash_ok(&pp2, pw, strlen(pw), ours);
	ck_assert_int_eq(argon2id_verify(ours, pw, strlen(pw)), ARGON2_OK);
	ck_assert_int_eq(password_verify(&pp2, ours, pw, strlen(pw), NULL), FA_OK);
}
END_TEST

START_TEST(test_too_long)
{
	struct password_params	pp = small;
	char			h[PASSWORD_PHC_MAX], big[2048];
	unsigned long		before;

	memset(big, 'a', sizeof big);
	hash_ok(&small, big, 64, h);	/* exactly max_len is fine */
	ck_assert_int_eq(password_verify(&small, h, big, 64, NULL), FA_OK);

	before = hashes_run();
	ck_assert_int_eq(password_hash(&small, big, 65, h, sizeof h), FA_LIMIT);
	ck_assert_int_eq(password_verify(&small, h, big, 65, NULL), FA_LIMIT);
	ck_assert_int_eq(password_verify_dummy(&small, big, 65), FA_LIMIT);
	/* Also when the stored hash is malformed: the limit comes first. */
	ck_assert_int_eq(password_verify(&small, "garbage", big, 65, NULL), FA_LIMIT);
	ck_assert_uint_eq(hashes_run(), before);	/* nothing was hashed */

	/* max_len 0 means the default, 1024 bytes. */
	pp.max_len = 0;
	ck_assert_int_eq(password_hash(&pp, big, 1025, h, sizeof h), FA_LIMIT);
	ck_assert_uint_eq(hashes_run(), before);
	hash_ok(&pp, big, 1024, h);
	ck_assert_int_eq(password_verify(&pp, h, big, 1024, NULL), FA_OK);
}
END_TEST

/* Malformed stored strings; %S and %H are replaced by a valid salt and hash. */
static const char *malformed[] = {
	"",
	"$",
	"$argon2id",
	"$argon2id$",
	"$argon2id$v=19",
	"$argon2id$v=19$m=256,t=1,p=1",
	"$argon2id$v=19$m=256,t=1,p=1$",
	"$argon2id$v=19$m=256,t=1,p=1$%S",
	"$argon2id$v=19$m=256,t=1,p=1$%S$",
	"$argon2id$v=19$m=256,t=1,p=1$%S$%H$",
	"$argon2id$v=19$m=256,t=1,p=1$%S$%H$%H",
	"$argon2id$v=19$m=256,t=1,p=1$$%H",
	"$argon2i$v=19$m=256,t=1,p=1$%S$%H",
	"$argon2d$v=19$m=256,t=1,p=1$%S$%H",
	"$argon2$v=19$m=256,t=1,p=1$%S$%H",
	"$ARGON2ID$v=19$m=256,t=1,p=1$%S$%H",
	"$argon2id$m=256,t=1,p=1$%S$%H",		/* no version */
	"$argon2id$v=20$m=256,t=1,p=1$%S$%H",
	"$argon2id$v=019$m=256,t=1,p=1$%S$%H",
	"$argon2id$v=1$m=256,t=1,p=1$%S$%H",
	"$argon2id$v=19,m=256,t=1,p=1$%S$%H",
	"$argon2id$v=19$m=0256,t=1,p=1$%S$%H",		/* leading zero */
	"$argon2id$v=19$m=+256,t=1,p=1$%S$%H",
	"$argon2id$v=19$m=-256,t=1,p=1$%S$%H",
	"$argon2id$v=19$m= 256,t=1,p=1$%S$%H",
	"$argon2id$v=19$m=256 ,t=1,p=1$%S$%H",
	"$argon2id$v=19$m=256,t=1,p=1 $%S$%H",
	"$argon2id$v=19$m=,t=1,p=1$%S$%H",
	"$argon2id$v=19$m=256,t=,p=1$%S$%H",
	"$argon2id$v=19$m=256,t=1,p=$%S$%H",
	"$argon2id$v=19$m=0,t=1,p=1$%S$%H",
	"$argon2id$v=19$m=256,t=0,p=1$%S$%H",
	"$argon2id$v=19$m=256,t=1,p=0$%S$%H",
	"$argon2id$v=19$m=7,t=1,p=1$%S$%H",		/* below 8 KiB per lane */
	"$argon2id$v=19$m=15,t=1,p=2$%S$%H",
	"$argon2id$v=19$m=4194305,t=1,p=1$%S$%H",	/* above 4 GiB */
	"$argon2id$v=19$m=4294967295,t=1,p=1$%S$%H",
	"$argon2id$v=19$m=4294967296,t=1,p=1$%S$%H",
	"$argon2id$v=19$m=99999999999,t=1,p=1$%S$%H",
	"$argon2id$v=19$m=18446744073709551872,t=1,p=1$%S$%H",
	"$argon2id$v=19$m=256,t=1025,p=1$%S$%H",
	"$argon2id$v=19$m=256,t=4294967295,p=1$%S$%H",
	"$argon2id$v=19$m=4096,t=1,p=256$%S$%H",
	"$argon2id$v=19$m=4096,t=1,p=16777215$%S$%H",
	"$argon2id$v=19$t=1,m=256,p=1$%S$%H",		/* order */
	"$argon2id$v=19$m=256,p=1,t=1$%S$%H",
	"$argon2id$v=19$m=256,t=1$%S$%H",
	"$argon2id$v=19$m=256,t=1,p=1,keyid=abcd$%S$%H",
	"$argon2id$v=19$m=256,t=1,p=1,data=abcd$%S$%H",
	"$argon2id$v=19$m=256,m=256,t=1,p=1$%S$%H",
	"$argon2id$v=19$m=256,t=1,p=1$%S==$%H",		/* padding */
	"$argon2id$v=19$m=256,t=1,p=1$%S$%H=",
	"$argon2id$v=19$m=256,t=1,p=1$QUJDREVGR0g-SUpLTE1OT1A$%H",	/* base64url */
	"$argon2id$v=19$m=256,t=1,p=1$QUJDREVGR0g_SUpLTE1OT1A$%H",
	"$argon2id$v=19$m=256,t=1,p=1$QUJDREVGR0g SUpLTE1OT1A$%H",
	"$argon2id$v=19$m=256,t=1,p=1$QUJDREVGR0hJSktMTU5PU$%H",	/* len%4 == 1 */
	"$argon2id$v=19$m=256,t=1,p=1$QUJDREVGR0hJSktMTU5PUB$%H",	/* trailing bits */
	"$argon2id$v=19$m=256,t=1,p=1$QUJDREVGRw$%H",			/* 7-byte salt */
	"$argon2id$v=19$m=256,t=1,p=1$%S%S%S%S$%H",			/* 64+ bytes */
	"$argon2id$v=19$m=256,t=1,p=1$%S$QUJDREVGR0hJSktMTU5P",		/* 15-byte hash */
	"$argon2id$v=19$m=256,t=1,p=1$%S$%H%H%H",			/* 65+ bytes */
	"$argon2id$v=19$m=256,t=1,p=1$%S\n$%H",
	"$argon2id$v=19$m=256,t=1,p=1$%S$%H\n",
	" $argon2id$v=19$m=256,t=1,p=1$%S$%H",
	"$argon2id$$v=19$m=256,t=1,p=1$%S$%H",
	"argon2id$v=19$m=256,t=1,p=1$%S$%H",
	"$2b$12$GhvMmNVjRW29ulnudl.LbuAnUtN/LRfe1JsBm1Xu6LE3059z5Tr8m",	/* bcrypt */
	"{SSHA}abcdefgh",
	"!",
	"*",
};

/* Expand %S / %H in tmpl into out with the salt and hash of a valid string. */
static void
expand(const char *tmpl, const char *salt, const char *hash, char *out, size_t cap)
{
	size_t o = 0;
	const char *s;

	for (; *tmpl != '\0' && o + 1 < cap; tmpl++) {
		if (tmpl[0] == '%' && (tmpl[1] == 'S' || tmpl[1] == 'H')) {
			for (s = tmpl[1] == 'S' ? salt : hash; *s && o + 1 < cap; s++)
				out[o++] = *s;
			tmpl++;
		} else
			out[o++] = *tmpl;
	}
	out[o] = '\0';
}

START_TEST(test_malformed)
{
	struct password_phc	phc;
	char			good[PASSWORD_PHC_MAX], salt[64], hash[64];
	char			s[1024], *cause, *d1, *d2;
	unsigned long		before;
	size_t			i, n;
	int			rehash;

	hash_ok(&small, pw, strlen(pw), good);
	d1 = strrchr(good, '$');
	*d1 = '\0';
	d2 = strrchr(good, '$');
	snprintf(salt, sizeof salt, "%s", d2 + 1);
	snprintf(hash, sizeof hash, "%s", d1 + 1);
	*d1 = '$';
	expand("$argon2id$v=19$m=256,t=1,p=1$%S$%H", salt, hash, s, sizeof s);
	ck_assert_str_eq(s, good);	/* the template machinery itself */

	for (i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
		expand(malformed[i], salt, hash, s, sizeof s);
		cause = NULL;
		ck_assert_msg(password_phc_parse(s, strlen(s), &phc, &cause) == FA_ERR,
		    "accepted [%s]", s);
		ck_assert_ptr_nonnull(cause);
		free(cause);
		/* The verifier refuses it and spends one (dummy) hash doing so. */
		before = hashes_run();
		rehash = -1;
		ck_assert_msg(password_verify(&small, s, pw, strlen(pw), &rehash) ==
		    FA_DENIED, "verified [%s]", s);
		ck_assert_int_eq(rehash, 0);
		ck_assert_uint_eq(hashes_run(), before + 1);
	}

	/*
	 * Every proper prefix of a valid string, and a NUL inside one. A hash cut
	 * to 16..31 bytes is still well-formed (other tools store 16), but never
	 * verifies: the output length is an input of Argon2.
	 */
	n = strlen(good);
	for (i = 0; i < n; i++) {
		memcpy(s, good, i);
		s[i] = '\0';
		if (password_phc_parse(good, i, &phc, NULL) == FA_OK) {
			ck_assert_msg(i >= (size_t)(d1 - good) + 1 + 22,
			    "prefix %zu accepted", i);
			ck_assert_int_eq(password_verify(&small, s, pw, strlen(pw),
			    NULL), FA_DENIED);
		} else if (i % 16 == 0)
			ck_assert_int_eq(password_verify(&small, s, pw, strlen(pw),
			    NULL), FA_DENIED);
		memcpy(s, good, n + 1);
		s[i] = '\0';
		ck_assert_int_eq(password_phc_parse(s, n, &phc, NULL), FA_ERR);
	}
	ck_assert_int_eq(password_phc_parse(good, n, &phc, NULL), FA_OK);

	/*
	 * 43 characters carry 258 bits for a 32-byte hash: the last character's
	 * two spare bits must be zero, or two strings would mean one hash.
	 */
	{
		static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789+/";
		size_t v = (size_t)(strchr(b64, good[n - 1]) - b64);

		ck_assert_uint_eq(v % 4, 0);
		memcpy(s, good, n + 1);
		for (i = 1; i < 4; i++) {
			s[n - 1] = b64[v + i];
			ck_assert_msg(password_phc_parse(s, n, &phc, NULL) == FA_ERR,
			    "spare bits accepted [%s]", s);
		}
	}

	/* Overlong input is refused before it is read. */
	memset(s, 'A', sizeof s - 1);
	s[sizeof s - 1] = '\0';
	memcpy(s, "$argon2id$v=19$m=256,t=1,p=1$", 29);
	ck_assert_int_eq(password_phc_parse(s, strlen(s), &phc, NULL), FA_ERR);
	ck_assert_int_eq(password_verify(&small, s, pw, strlen(pw), NULL), FA_DENIED);
}
END_TEST

START_TEST(test_ceiling)
{
	struct password_params	 pp = small;
	struct password_pool_stats a, b;
	struct password_phc	 phc;
	char			 good[PASSWORD_PHC_MAX], s[PASSWORD_PHC_MAX];

	hash_ok(&small, pw, strlen(pw), good);
	ck_assert_int_eq(password_phc_parse(good, strlen(good), &phc, NULL), FA_OK);

	/* Valid syntax, but above the default ceilings (256 MiB, t 16, p 8). */
	phc.m_kib = PASSWORD_M_CEIL_DEFAULT + 1;
	ck_assert_int_eq(password_phc_encode(&phc, s, sizeof s), FA_OK);
	ck_assert_int_eq(password_phc_parse(s, strlen(s), &phc, NULL), FA_OK);
	password_pool_stats(&a);
	ck_assert_int_eq(password_verify(&pp, s, pw, strlen(pw), NULL), FA_DENIED);
	password_pool_stats(&b);
	ck_assert_uint_eq(b.hashes, a.hashes + 1);	/* the dummy, at m=256 */
	ck_assert_uint_eq(b.oneshots, a.oneshots);
	ck_assert_uint_le(b.bytes, 1024 * 1024);

	phc.m_kib = 256;
	phc.t = PASSWORD_T_CEIL_DEFAULT + 1;
	ck_assert_int_eq(password_phc_encode(&phc, s, sizeof s), FA_OK);
	ck_assert_int_eq(password_verify(&pp, s, pw, strlen(pw), NULL), FA_DENIED);
	phc.t = 1;
	phc.p = PASSWORD_P_CEIL_DEFAULT + 1;
	ck_assert_int_eq(password_phc_encode(&phc, s, sizeof s), FA_OK);
	ck_assert_int_eq(password_verify(&pp, s, pw, strlen(pw), NULL), FA_DENIED);

	/* A configured ceiling below the default: m=512 is refused with 300. */
	hash_ok(&(struct password_params){ .m_kib = 512, .t = 1, .p = 1 }, pw,
	    strlen(pw), s);
	pp.m_ceil_kib = 300;
	ck_assert_int_eq(password_verify(&pp, s, pw, strlen(pw), NULL), FA_DENIED);
	pp.m_ceil_kib = 512;
	ck_assert_int_eq(password_verify(&pp, s, pw, strlen(pw), NULL), FA_OK);
}
END_TEST

/* xorshift64*: a reproducible mutation source. */
static uint64_t
rnd(uint64_t *st)
{
	*st ^= *st >> 12;
	*st ^= *st << 25;
	*st ^= *st >> 27;
	return *st * 2685821657736338717ULL;
}

START_TEST(test_fuzz)
{
	static const char alpha[] = "$argon2idv=19,mtp0123456789+/ABCXYZabxyz=-_ \n";
	struct password_phc	 phc;
	char			 good[PASSWORD_PHC_MAX], s[PASSWORD_PHC_MAX * 2];
	char			 enc[PASSWORD_PHC_MAX];
	uint64_t		 st = 0x9e3779b97f4a7c15ULL;
	size_t			 n, k, pos;
	long			 i, iters = 20000, accepted = 0, ops;
	const char		*env = getenv("FUZZ_ITERS");

	if (env != NULL)
		iters = atol(env);
	hash_ok(&small, pw, strlen(pw), good);
	for (i = 0; i < iters; i++) {
		n = strlen(good);
		memcpy(s, good, n);
		for (ops = 1 + (long)(rnd(&st) % 3); ops > 0; ops--) {
			pos = n ? rnd(&st) % n : 0;
			switch (rnd(&st) % 7) {
			case 0:		/* replace by a likely character */
				if (n)
					s[pos] = alpha[rnd(&st) % (sizeof alpha - 1)];
				break;
			case 1:		/* replace by any byte */
				if (n)
					s[pos] = (char)(rnd(&st) & 0xff);
				break;
			case 2:		/* delete */
				if (n) {
					memmove(s + pos, s + pos + 1, n - pos - 1);
					n--;
				}
				break;
			case 3:		/* insert */
				if (n + 1 < sizeof s) {
					memmove(s + pos + 1, s + pos, n - pos);
					s[pos] = alpha[rnd(&st) % (sizeof alpha - 1)];
					n++;
				}
				break;
			case 4:		/* truncate */
				n = pos;
				break;
			case 5:		/* duplicate a run */
				k = rnd(&st) % 24;
				if (pos + k <= n && n + k < sizeof s) {
					memmove(s + pos + k, s + pos, n - pos);
					n += k;
				}
				break;
			default:	/* random garbage from the alphabet */
				n = rnd(&st) % (sizeof s - 1);
				for (k = 0; k < n; k++)
					s[k] = alpha[rnd(&st) % (sizeof alpha - 1)];
				break;
			}
		}
		if (password_phc_parse(s, n, &phc, NULL) != FA_OK)
			continue;
		/* Accepted means canonical: it encodes back to the same bytes. */
		accepted++;
		ck_assert_int_eq(password_phc_encode(&phc, enc, sizeof enc), FA_OK);
		ck_assert_uint_eq(strlen(enc), n);
		ck_assert_int_eq(memcmp(enc, s, n), 0);
		ck_assert_uint_ge(phc.m_kib, 8 * phc.p);
		ck_assert_uint_le(phc.m_kib, PASSWORD_HARD_M_MAX);
	}
	if (iters >= 1000)
		ck_assert_int_gt(accepted, 0);	/* the round-trip check did run */
}
END_TEST

START_TEST(test_dummy)
{
	struct password_params		pp = small;
	struct password_pool_stats	st;
	unsigned long			before;
	char				h[PASSWORD_PHC_MAX];

	before = hashes_run();
	ck_assert_int_eq(password_verify_dummy(&small, pw, strlen(pw)), FA_DENIED);
	ck_assert_int_eq(password_verify_dummy(&small, "", 0), FA_DENIED);
	ck_assert_int_eq(password_verify_dummy(&small, "a\0b", 3), FA_DENIED);
	ck_assert_uint_eq(hashes_run(), before + 3);	/* each one hashed */

	/* The dummy follows the parameters: m=1024 maps 1 MiB. */
	password_thread_release();
	pp.m_kib = 1024;
	ck_assert_int_eq(password_verify_dummy(&pp, pw, strlen(pw)), FA_DENIED);
	password_pool_stats(&st);
	ck_assert_uint_eq(st.bytes, 1024 * 1024);
	pp.t = 2;
	ck_assert_int_eq(password_verify_dummy(&pp, pw, strlen(pw)), FA_DENIED);
	ck_assert_int_eq(password_verify_dummy(&small, pw, strlen(pw)), FA_DENIED);

	/* A real hash of the same password is still its own. */
	hash_ok(&small, pw, strlen(pw), h);
	ck_assert_int_eq(password_verify(&small, h, pw, strlen(pw), NULL), FA_OK);

	pp.t = 0;
	ck_assert_int_eq(password_verify_dummy(&pp, pw, strlen(pw)), FA_ERR);
}
END_TEST

START_TEST(test_pool_reuse)
{
	struct password_params		pp = small;
	struct password_pool_stats	st, st0;
	char				h[PASSWORD_PHC_MAX], big[PASSWORD_PHC_MAX];
	int				i;

	password_thread_release();
	password_pool_stats(&st0);
	ck_assert_uint_eq(st0.bytes, 0);
	for (i = 0; i < 20; i++)
		hash_ok(&small, pw, strlen(pw), h);
	password_pool_stats(&st);
	ck_assert_uint_eq(st.maps - st0.maps, 1);		/* one buffer ... */
	ck_assert_uint_eq(st.reuses - st0.reuses, 19);	/* ... used 20 times */
	ck_assert_uint_eq(st.bytes, 256 * 1024);
	ck_assert_uint_eq(st.live_pools, st0.live_pools + 1);

	/* Parameters grow: the pool grows once, and stays when they shrink. */
	pp.m_kib = 512;
	hash_ok(&pp, pw, strlen(pw), big);
	hash_ok(&small, pw, strlen(pw), h);
	password_pool_stats(&st);
	ck_assert_uint_eq(st.maps - st0.maps, 2);
	ck_assert_uint_eq(st.bytes, 512 * 1024);

	/* A stored hash dearer than the configuration gets a one-shot mapping. */
	pp.m_kib = 1024;
	hash_ok(&pp, pw, strlen(pw), big);
	password_thread_release();
	ck_assert_int_eq(password_verify(&small, h, pw, strlen(pw), NULL), FA_OK);
	password_pool_stats(&st0);
	ck_assert_int_eq(password_verify(&small, big, pw, strlen(pw), NULL), FA_OK);
	password_pool_stats(&st);
	ck_assert_uint_eq(st.oneshots - st0.oneshots, 1);
	ck_assert_uint_eq(st.maps, st0.maps);
	ck_assert_uint_eq(st.bytes, 256 * 1024);

	/* Release gives it back; prepare maps it ahead of the first hash. */
	password_thread_release();
	password_pool_stats(&st);
	ck_assert_uint_eq(st.bytes, 0);
	ck_assert_uint_eq(st.live_pools, st0.live_pools - 1);
	ck_assert_int_eq(password_thread_prepare(&small), FA_OK);
	password_pool_stats(&st0);
	ck_assert_uint_eq(st0.bytes, 256 * 1024);
	hash_ok(&small, pw, strlen(pw), h);
	password_pool_stats(&st);
	ck_assert_uint_eq(st.maps, st0.maps);
	ck_assert_uint_eq(st.reuses, st0.reuses + 1);
}
END_TEST

#define NTHREADS 4
static pthread_barrier_t	 pool_barrier;
static struct password_pool_stats pool_seen[NTHREADS];
static int			 pool_fail[NTHREADS];

static void *
pool_thread(void *arg)
{
	int	i, me = (int)(intptr_t)arg;
	char	h[PASSWORD_PHC_MAX];

	for (i = 0; i < 5; i++) {
		if (password_hash(&small, pw, strlen(pw), h, sizeof h) != FA_OK ||
		    password_verify(&small, h, pw, strlen(pw), NULL) != FA_OK ||
		    password_verify_dummy(&small, pw, strlen(pw)) != FA_DENIED)
			pool_fail[me] = 1;
	}
	password_pool_stats(&pool_seen[me]);
	pthread_barrier_wait(&pool_barrier);	/* all pools alive at once */
	pthread_barrier_wait(&pool_barrier);	/* main has looked */
	return NULL;
}

START_TEST(test_pool_threads)
{
	pthread_t			t[NTHREADS];
	struct password_pool_stats	st;
	int				i;

	password_thread_release();
	password_pool_stats(&st);
	ck_assert_uint_eq(st.live_pools, 0);
	pthread_barrier_init(&pool_barrier, NULL, NTHREADS + 1);
	for (i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, pool_thread,
		    (void *)(intptr_t)i), 0);
	pthread_barrier_wait(&pool_barrier);
	password_pool_stats(&st);
	ck_assert_uint_eq(st.live_pools, NTHREADS);	/* one each */
	ck_assert_uint_eq(st.live_bytes, NTHREADS * 256 * 1024);
	pthread_barrier_wait(&pool_barrier);
	for (i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < NTHREADS; i++) {
		ck_assert_int_eq(pool_fail[i], 0);
		ck_assert_uint_eq(pool_seen[i].maps, 1);
		ck_assert_uint_eq(pool_seen[i].hashes, 15);
		ck_assert_uint_eq(pool_seen[i].reuses, 14);
	}
	/* Thread exit ran the destructor: nothing is left mapped. */
	password_pool_stats(&st);
	ck_assert_uint_eq(st.live_pools, 0);
	ck_assert_uint_eq(st.live_bytes, 0);
	pthread_barrier_destroy(&pool_barrier);
}
END_TEST

/*
 * With a process limit of 2 pools, 4 hashing threads keep at most 2 pools;
 * the others hash in one-shot mappings, and every hash still works.
 */
START_TEST(test_pool_limit)
{
	pthread_t			t[NTHREADS];
	struct password_pool_stats	st;
	unsigned long			oneshots = 0, maps = 0;
	int				i;

	password_thread_release();
	password_pool_limit(2);
	pthread_barrier_init(&pool_barrier, NULL, NTHREADS + 1);
	for (i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, pool_thread,
		    (void *)(intptr_t)i), 0);
	pthread_barrier_wait(&pool_barrier);
	password_pool_stats(&st);
	ck_assert_uint_le(st.live_pools, 2);
	ck_assert_uint_le(st.live_bytes, 2 * 256 * 1024);
	pthread_barrier_wait(&pool_barrier);
	for (i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < NTHREADS; i++) {
		ck_assert_int_eq(pool_fail[i], 0);
		ck_assert_uint_eq(pool_seen[i].hashes, 15);
		oneshots += pool_seen[i].oneshots;
		maps += pool_seen[i].maps;
	}
	ck_assert_uint_le(maps, 2);
	ck_assert_uint_ge(oneshots, 15 * (NTHREADS - 2));
	password_pool_limit(0);
	pthread_barrier_destroy(&pool_barrier);
}
END_TEST

START_TEST(test_defaults)
{
	struct password_params	pp = PASSWORD_PARAMS_DEFAULT;
	char			h[PASSWORD_PHC_MAX];
	int			rehash = -1;

	ck_assert_int_eq(password_params_check(&pp, NULL), FA_OK);
	hash_ok(&pp, pw, strlen(pw), h);
	ck_assert_int_eq(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31), 0);
	ck_assert_int_eq(password_verify(&pp, h, pw, strlen(pw), &rehash), FA_OK);
	ck_assert_int_eq(rehash, 0);
	ck_assert_int_eq(password_verify(&pp, h, "x", 1, NULL), FA_DENIED);
	ck_assert_int_eq(password_verify_dummy(&pp, pw, strlen(pw)), FA_DENIED);
	ck_assert_int_eq(argon2id_verify(h, pw, strlen(pw)), ARGON2_OK);
	password_thread_release();
}
END_TEST

START_TEST(test_params)
{
	static const struct password_params bad[] = {
		{ .m_kib = 256, .t = 0, .p = 1 },
		{ .m_kib = 256, .t = 1, .p = 0 },
		{ .m_kib = 7, .t = 1, .p = 1 },
		{ .m_kib = 15, .t = 1, .p = 2 },
		{ .m_kib = 256, .t = 1, .p = 256 },
		{ .m_kib = 256, .t = 1025, .p = 1 },
		{ .m_kib = PASSWORD_HARD_M_MAX + 1, .t = 1, .p = 1 },
		{ .m_kib = 256, .t = 1, .p = 1, .max_len = PASSWORD_HARD_LEN_MAX + 1 },
		/* above the default ceiling, or above a configured one */
		{ .m_kib = PASSWORD_M_CEIL_DEFAULT + 1, .t = 1, .p = 1 },
		{ .m_kib = 256, .t = 17, .p = 1 },
		{ .m_kib = 1024, .t = 1, .p = 9 },
		{ .m_kib = 512, .t = 1, .p = 1, .m_ceil_kib = 511 },
		{ .m_kib = 256, .t = 1, .p = 1, .m_ceil_kib = PASSWORD_HARD_M_MAX + 1 },
	};
	struct password_params	good = { .m_kib = 524288, .t = 1, .p = 1,
	    .m_ceil_kib = 1048576 };
	char			*cause, h[PASSWORD_PHC_MAX];
	size_t			 i;
	unsigned long		 before;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cause = NULL;
		ck_assert_msg(password_params_check(&bad[i], &cause) == FA_ERR,
		    "bad[%zu] accepted", i);
		ck_assert_ptr_nonnull(cause);
		free(cause);
		before = hashes_run();
		ck_assert_int_eq(password_hash(&bad[i], pw, strlen(pw), h, sizeof h),
		    FA_ERR);
		ck_assert_int_eq(password_verify_dummy(&bad[i], pw, strlen(pw)),
		    FA_ERR);
		ck_assert_uint_eq(hashes_run(), before);
	}
	ck_assert_int_eq(password_params_check(&good, NULL), FA_OK);
	ck_assert_int_eq(password_params_check(&small, NULL), FA_OK);

	/* A buffer too small for the string costs no hash. */
	before = hashes_run();
	ck_assert_int_eq(password_hash(&small, pw, strlen(pw), h, 95), FA_ERR);
	ck_assert_uint_eq(hashes_run(), before);
	/* 29 head + 22 salt + '$' + 43 hash + NUL */
	ck_assert_int_eq(password_hash(&small, pw, strlen(pw), h, 96), FA_OK);
	ck_assert_uint_eq(strlen(h), 95);
}
END_TEST

static Suite *
password_suite(void)
{
	Suite	*s = suite_create("password");
	TCase	*tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, NULL);
	/* Generous: under valgrind an Argon2 hash is ~50 times slower. */
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_rehash);
	tcase_add_test(tc, test_reference);
	tcase_add_test(tc, test_too_long);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_ceiling);
	tcase_add_test(tc, test_fuzz);
	tcase_add_test(tc, test_dummy);
	tcase_add_test(tc, test_pool_reuse);
	tcase_add_test(tc, test_pool_threads);
	tcase_add_test(tc, test_pool_limit);
	tcase_add_test(tc, test_params);
	suite_add_tcase(s, tc);

	tc = tcase_create("defaults");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_defaults);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(password_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
