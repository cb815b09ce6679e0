/*
 * test_token.c -- Check suite for crypto.c and token.c: the AEAD and MAC
 * primitives against known answers and tampering, and sealed tokens against
 * every single-character change, every truncation, the wrong key, version or
 * kid, and the field limits.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "core/b64.h"
#include "core/fastauth.h"
#include "crypto/crypto.h"
#include "crypto/token.h"

static struct crypto_ctx *ctx;
static uint8_t key1[CRYPTO_KEYLEN], key2[CRYPTO_KEYLEN];

static void
setup(void)
{
	char	*cause = NULL;
	size_t	 i;

	ck_assert_int_eq(crypto_init(&cause), FA_OK);
	ctx = crypto_ctx_new();
	for (i = 0; i < CRYPTO_KEYLEN; i++) {
		key1[i] = (uint8_t)i;
		key2[i] = (uint8_t)(0xa5 ^ i);
	}
}

static void
teardown(void)
{
	crypto_ctx_free(ctx);
	ctx = NULL;
}

/* Fill claims with a typical client_credentials token. */
static void
claims_basic(struct token_claims *c)
{
	memset(c, 0, sizeof *c);
	ck_assert_int_eq(token_new_jti(c->jti), FA_OK);
	c->iat = 1700000000;
	c->exp = 1700003600;
	strcpy(c->client, "svc-reports");
	strcpy(c->subject, "");
	strcpy(c->scope, "read write");
}

static void
claims_eq(const struct token_claims *a, const struct token_claims *b)
{
	ck_assert(memcmp(a->jti, b->jti, TOKEN_JTI_LEN) == 0);
	ck_assert(a->iat == b->iat);
	ck_assert(a->exp == b->exp);
	ck_assert_str_eq(a->client, b->client);
	ck_assert_str_eq(a->subject, b->subject);
	ck_assert_str_eq(a->scope, b->scope);
}

static void
hex_eq(const uint8_t *got, size_t n, const char *want)
{
	char	hex[2 * CRYPTO_HASHLEN + 1];

	ck_assert_uint_le(n, CRYPTO_HASHLEN);
	crypto_hex(got, n, hex);
	ck_assert_str_eq(hex, want);
}

/* --- crypto ------------------------------------------------------------- */

START_TEST(test_seal_roundtrip)
{
	static const char	 msg[] = "the quick brown fox jumps over the lazy dog";
	uint8_t			 sealed[sizeof msg + CRYPTO_OVERHEAD];
	uint8_t			 sealed2[sizeof msg + CRYPTO_OVERHEAD];
	char			 pt[sizeof msg];

	ck_assert_int_eq(crypto_seal(ctx, key1, "aad", 3, msg, sizeof msg,
	    sealed), FA_OK);
	ck_assert_int_eq(crypto_open(ctx, key1, "aad", 3, sealed, sizeof sealed,
	    pt), FA_OK);
	ck_assert_str_eq(pt, msg);
	/* A fresh nonce each time: the same message never seals the same. */
	ck_assert_int_eq(crypto_seal(ctx, key1, "aad", 3, msg, sizeof msg,
	    sealed2), FA_OK);
	ck_assert(memcmp(sealed, sealed2, sizeof sealed) != 0);

	/* No AAD and an empty message are both legal. */
	ck_assert_int_eq(crypto_seal(ctx, key1, NULL, 0, msg, sizeof msg,
	    sealed), FA_OK);
	ck_assert_int_eq(crypto_open(ctx, key1, NULL, 0, sealed, sizeof sealed,
	    pt), FA_OK);
	ck_assert_str_eq(pt, msg);
	ck_assert_int_eq(crypto_seal(ctx, key1, "aad", 3, NULL, 0, sealed), FA_OK);
	ck_assert_int_eq(crypto_open(ctx, key1, "aad", 3, sealed, CRYPTO_OVERHEAD,
	    pt), FA_OK);
	ck_assert_int_eq(crypto_open(ctx, key1, "aax", 3, sealed, CRYPTO_OVERHEAD,
	    pt), FA_ERR);
	/* Shorter than nonce + tag. */
	ck_assert_int_eq(crypto_open(ctx, key1, "aad", 3, sealed,
	    CRYPTO_OVERHEAD - 1, pt), FA_ERR);
}
END_TEST

START_TEST(test_seal_tamper)
{
	static const char	 msg[] = "sealed claims";
	uint8_t			 sealed[sizeof msg + CRYPTO_OVERHEAD];
	char			 pt[sizeof msg];
	size_t			 i, bit;

	ck_assert_int_eq(crypto_seal(ctx, key1, "aad", 3, msg, sizeof msg,
	    sealed), FA_OK);
	for (i = 0; i < sizeof sealed; i++) {
		for (bit = 0; bit < 8; bit++) {
			sealed[i] ^= (uint8_t)(1u << bit);
			memset(pt, 'X', sizeof pt);
			ck_assert_int_eq(crypto_open(ctx, key1, "aad", 3, sealed,
			    sizeof sealed, pt), FA_ERR);
			/* A failed open leaves no plaintext behind. */
			ck_assert(pt[0] == '\0' && pt[sizeof pt - 2] == '\0');
			sealed[i] ^= (uint8_t)(1u << bit);
		}
	}
	ck_assert_int_eq(crypto_open(ctx, key1, "aad", 3, sealed, sizeof sealed,
	    pt), FA_OK);
}
END_TEST

START_TEST(test_seal_wrong_key_aad)
{
	static const char	 msg[] = "sealed claims";
	uint8_t			 sealed[sizeof msg + CRYPTO_OVERHEAD];
	char			 pt[sizeof msg];

	ck_assert_int_eq(crypto_seal(ctx, key1, "aad", 3, msg, sizeof msg,
	    sealed), FA_OK);
	ck_assert_int_eq(crypto_open(ctx, key2, "aad", 3, sealed, sizeof sealed,
	    pt), FA_ERR);
	ck_assert_int_eq(crypto_open(ctx, key1, "aae", 3, sealed, sizeof sealed,
	    pt), FA_ERR);
	ck_assert_int_eq(crypto_open(ctx, key1, "aa", 2, sealed, sizeof sealed,
	    pt), FA_ERR);
	ck_assert_int_eq(crypto_open(ctx, key1, NULL, 0, sealed, sizeof sealed,
	    pt), FA_ERR);
	/* The key cache must follow the key back and forth. */
	ck_assert_int_eq(crypto_open(ctx, key1, "aad", 3, sealed, sizeof sealed,
	    pt), FA_OK);
	ck_assert_int_eq(crypto_seal(ctx, key2, "aad", 3, msg, sizeof msg,
	    sealed), FA_OK);
	ck_assert_int_eq(crypto_open(ctx, key1, "aad", 3, sealed, sizeof sealed,
	    pt), FA_ERR);
	ck_assert_int_eq(crypto_open(ctx, key2, "aad", 3, sealed, sizeof sealed,
	    pt), FA_OK);
	ck_assert_str_eq(pt, msg);
}
END_TEST

START_TEST(test_hmac_rfc4231)
{
	static const char	 want1[] =
	    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
	static const char	 want2[] =
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
	uint8_t			 k1[20], out[CRYPTO_HASHLEN];
	int			 round;

	memset(k1, 0x0b, sizeof k1);
	/* Twice, alternating keys, so both the setkey and the reset path run. */
	for (round = 0; round < 2; round++) {
		/* RFC 4231 test case 1 */
		ck_assert_int_eq(crypto_hmac_sha256(ctx, k1, sizeof k1,
		    "Hi There", 8, out), FA_OK);
		hex_eq(out, sizeof out, want1);
		ck_assert_int_eq(crypto_hmac_sha256(ctx, k1, sizeof k1,
		    "Hi There", 8, out), FA_OK);
		hex_eq(out, sizeof out, want1);
		/* RFC 4231 test case 2 */
		ck_assert_int_eq(crypto_hmac_sha256(ctx, "Jefe", 4,
		    "what do ya want for nothing?", 28, out), FA_OK);
		hex_eq(out, sizeof out, want2);
	}
	/* A cached key that the next key is a prefix of is not the same key. */
	ck_assert_int_eq(crypto_hmac_sha256(ctx, "JefeX", 5,
	    "what do ya want for nothing?", 28, out), FA_OK);
	ck_assert_int_eq(crypto_hmac_sha256(ctx, "Jefe", 4,
	    "what do ya want for nothing?", 28, out), FA_OK);
	hex_eq(out, sizeof out, want2);
}
END_TEST

START_TEST(test_sha256)
{
	uint8_t	out[CRYPTO_HASHLEN];

	crypto_sha256("abc", 3, out);
	hex_eq(out, sizeof out,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	crypto_sha256("", 0, out);
	hex_eq(out, sizeof out,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(test_memeq_hex_random)
{
	uint8_t	a[32], b[32], zero[32] = { 0 };
	char	hex[9];
	size_t	i;

	memcpy(a, key1, sizeof a);
	memcpy(b, key1, sizeof b);
	ck_assert_int_eq(crypto_memeq(a, b, sizeof a), 1);
	ck_assert_int_eq(crypto_memeq(a, b, 0), 1);
	for (i = 0; i < sizeof a; i++) {
		b[i] ^= 0x80;
		ck_assert_int_eq(crypto_memeq(a, b, sizeof a), 0);
		b[i] ^= 0x80;
	}
	crypto_hex((const uint8_t *)"\x00\x9f\xa0\xff", 4, hex);
	ck_assert_str_eq(hex, "009fa0ff");
	ck_assert_int_eq(crypto_random(a, sizeof a), FA_OK);
	ck_assert_int_eq(crypto_random(b, sizeof b), FA_OK);
	ck_assert(!crypto_memeq(a, b, sizeof a));
	ck_assert(!crypto_memeq(a, zero, sizeof a));
	crypto_wipe(a, sizeof a);
	ck_assert(crypto_memeq(a, zero, sizeof a));
}
END_TEST

/* --- tokens ------------------------------------------------------------- */


/* A forked child must not hand out the nonces its parent's pool still holds. */
START_TEST(test_nonce_fork)
{
	uint8_t first[12], parent[12], child[12];
	int fds[2], status;
	pid_t pid;

	ck_assert_int_eq(crypto_nonce(first, sizeof first), FA_OK);	/* fills the pool */
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (crypto_nonce(child, sizeof child) != FA_OK)
			_exit(1);
		_exit(write(fds[1], child, sizeof child) == (ssize_t)sizeof child ? 0 : 1);
	}
	ck_assert_int_eq(crypto_nonce(parent, sizeof parent), FA_OK);
	ck_assert_int_eq(read(fds[0], child, sizeof child), (ssize_t)sizeof child);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert(memcmp(parent, child, sizeof child) != 0);
	ck_assert(memcmp(first, child, sizeof child) != 0);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

/* Many small nonces in a row: no two equal (pool refills across the boundary). */
START_TEST(test_nonce_distinct)
{
	static uint8_t seen[200][12];
	int i, j;

	for (i = 0; i < 200; i++) {
		ck_assert_int_eq(crypto_nonce(seen[i], 12), FA_OK);
		for (j = 0; j < i; j++)
			ck_assert(memcmp(seen[i], seen[j], 12) != 0);
	}
}
END_TEST

START_TEST(test_token_roundtrip)
{
	struct token_claims	c, got;
	char			text[TOKEN_MAX_LEN + 1];
	int			len;
	uint32_t		kid;

	claims_basic(&c);
	len = token_seal(ctx, 7, key1, &c, text, sizeof text);
	ck_assert_int_gt(len, 0);
	ck_assert_uint_eq(strlen(text), (size_t)len);
	ck_assert(strncmp(text, "fa1.", 4) == 0);
	ck_assert_int_eq(token_open(ctx, key1, text, len, &got), FA_OK);
	claims_eq(&c, &got);
	ck_assert_int_eq(token_peek_kid(text, len, &kid), FA_OK);
	ck_assert_uint_eq(kid, 7);

	/* A user token with a subject. */
	strcpy(c.subject, "user:8f14e45f");
	len = token_seal(ctx, 7, key1, &c, text, sizeof text);
	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(token_open(ctx, key1, text, len, &got), FA_OK);
	claims_eq(&c, &got);
}
END_TEST

START_TEST(test_token_maximal)
{
	struct token_claims	c, got;
	char			text[TOKEN_MAX_LEN + 1];
	int			len;
	uint32_t		kid;

	memset(&c, 0, sizeof c);
	memset(c.jti, 0xff, sizeof c.jti);
	c.iat = UINT64_MAX - 1;
	c.exp = UINT64_MAX;
	memset(c.client, 'c', FA_CLIENT_ID_MAX);
	memset(c.subject, '\xe9', FA_SUBJECT_MAX);	/* any byte but NUL */
	memset(c.scope, 's', FA_SCOPE_MAX);
	len = token_seal(ctx, UINT32_MAX, key1, &c, text, sizeof text);
	ck_assert_int_gt(len, 0);
	ck_assert_int_le(len, TOKEN_MAX_LEN);
	ck_assert_int_eq(token_open(ctx, key1, text, len, &got), FA_OK);
	claims_eq(&c, &got);
	ck_assert_uint_eq(strlen(got.scope), FA_SCOPE_MAX);
	ck_assert_int_eq(token_peek_kid(text, len, &kid), FA_OK);
	ck_assert_uint_eq(kid, UINT32_MAX);

	/* One byte less room than needed must fail, exactly enough must not. */
	ck_assert_int_eq(token_seal(ctx, 1, key1, &c, text, len), FA_ERR);
	ck_assert_int_eq(token_seal(ctx, 1, key1, &c, text, len + 1), len);
}
END_TEST

START_TEST(test_token_empty_subject_scope)
{
	struct token_claims	c, got;
	char			text[TOKEN_MAX_LEN + 1];
	int			len;

	claims_basic(&c);
	c.scope[0] = '\0';
	strcpy(c.client, "x");			/* shortest legal client */
	len = token_seal(ctx, 0, key1, &c, text, sizeof text);
	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(token_open(ctx, key1, text, len, &got), FA_OK);
	claims_eq(&c, &got);
	ck_assert_str_eq(got.subject, "");
	ck_assert_str_eq(got.scope, "");
}
END_TEST

START_TEST(test_token_every_char_modified)
{
	struct token_claims	c, got;
	char			text[TOKEN_MAX_LEN + 1];
	int			len, i, v;
	char			orig;

	claims_basic(&c);
	strcpy(c.subject, "alice");
	len = token_seal(ctx, 3, key1, &c, text, sizeof text);
	ck_assert_int_gt(len, 0);
	/* Every other value of every character, including the prefix. */
	for (i = 0; i < len; i++) {
		orig = text[i];
		for (v = 0; v < 256; v++) {
			if ((char)v == orig)
				continue;
			text[i] = (char)v;
			ck_assert_msg(token_open(ctx, key1, text, len, &got) ==
			    FA_ERR, "opened with text[%d] = 0x%02x", i, v);
		}
		text[i] = orig;
	}
	ck_assert_int_eq(token_open(ctx, key1, text, len, &got), FA_OK);
	claims_eq(&c, &got);
}
END_TEST

START_TEST(test_token_truncated_extended)
{
	struct token_claims	c, got;
	char			text[TOKEN_MAX_LEN + 2];
	int			len, i;

	claims_basic(&c);
	len = token_seal(ctx, 3, key1, &c, text, sizeof text);
	ck_assert_int_gt(len, 0);
	for (i = 0; i < len; i++)
		ck_assert_msg(token_open(ctx, key1, text, i, &got) == FA_ERR,
		    "opened truncated to %d", i);
	/* Appended characters, base64url or not. */
	memcpy(text + len, "A", 2);
	ck_assert_int_eq(token_open(ctx, key1, text, len + 1, &got), FA_ERR);
	memcpy(text + len, "=", 2);
	ck_assert_int_eq(token_open(ctx, key1, text, len + 1, &got), FA_ERR);
	/* Longer than any token can be. */
	memset(text, 'A', sizeof text);
	memcpy(text, "fa1.", 4);
	ck_assert_int_eq(token_open(ctx, key1, text, TOKEN_MAX_LEN + 1, &got),
	    FA_ERR);
	ck_assert_int_eq(token_open(ctx, key1, text, TOKEN_MAX_LEN, &got), FA_ERR);
}
END_TEST

START_TEST(test_token_wrong_key_prefix_kid)
{
	struct token_claims	c, got;
	char			text[TOKEN_MAX_LEN + 1], text2[TOKEN_MAX_LEN + 1];
	uint8_t			blob[TOKEN_MAX_LEN];
	size_t			bloblen;
	int			len;
	uint32_t		kid;

	claims_basic(&c);
	len = token_seal(ctx, 0x01020304, key1, &c, text, sizeof text);
	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(token_open(ctx, key2, text, len, &got), FA_ERR);
	ck_assert_int_eq(token_open(ctx, key1, text, len, &got), FA_OK);

	/* Another version prefix, same body. */
	memcpy(text2, text, len + 1);
	text2[2] = '2';
	ck_assert_int_eq(token_open(ctx, key1, text2, len, &got), FA_ERR);
	ck_assert_int_eq(token_peek_kid(text2, len, &kid), FA_ERR);

	/* Another kid, re-encoded: the AAD binds it. */
	ck_assert_int_eq(b64url_decode(text + 4, len - 4, blob, sizeof blob,
	    &bloblen), FA_OK);
	blob[3] ^= 0x01;
	memcpy(text2, "fa1.", 4);
	ck_assert_uint_eq(b64url_encode(blob, bloblen, text2 + 4), (size_t)len - 4);
	ck_assert_int_eq(token_peek_kid(text2, len, &kid), FA_OK);
	ck_assert_uint_eq(kid, 0x01020305);
	ck_assert_int_eq(token_open(ctx, key1, text2, len, &got), FA_ERR);
}
END_TEST

START_TEST(test_token_field_limits)
{
	struct token_claims	c;
	char			text[TOKEN_MAX_LEN + 1];

	/* Each field filled to its array end, without a NUL within the limit. */
	claims_basic(&c);
	memset(c.client, 'c', sizeof c.client);
	ck_assert_int_eq(token_seal(ctx, 1, key1, &c, text, sizeof text), FA_ERR);
	claims_basic(&c);
	memset(c.subject, 'u', sizeof c.subject);
	ck_assert_int_eq(token_seal(ctx, 1, key1, &c, text, sizeof text), FA_ERR);
	claims_basic(&c);
	memset(c.scope, 's', sizeof c.scope);
	ck_assert_int_eq(token_seal(ctx, 1, key1, &c, text, sizeof text), FA_ERR);
	/* An empty client is never a token. */
	claims_basic(&c);
	c.client[0] = '\0';
	ck_assert_int_eq(token_seal(ctx, 1, key1, &c, text, sizeof text), FA_ERR);
	/* outcap too small for even a basic token. */
	claims_basic(&c);
	ck_assert_int_eq(token_seal(ctx, 1, key1, &c, text, 10), FA_ERR);
}
END_TEST

/*
 * Seal a hand-made claims plaintext as token_seal would (kid 9) and try to
 * open it: only the decoder stands between it and the caller.
 */
static int
open_plaintext(const uint8_t *pt, size_t n, struct token_claims *got)
{
	static const uint8_t	aad[7] = { 'f', 'a', '1', 0, 0, 0, 9 };
	uint8_t			blob[4 + CRYPTO_OVERHEAD + 2048];
	char			text[TOKEN_MAX_LEN + 1];
	size_t			len;

	ck_assert_uint_le(n, 2048);
	memcpy(blob, aad + 3, 4);
	ck_assert_int_eq(crypto_seal(ctx, key1, aad, sizeof aad, pt, n, blob + 4),
	    FA_OK);
	memcpy(text, "fa1.", 4);
	len = 4 + b64url_encode(blob, 4 + CRYPTO_OVERHEAD + n, text + 4);
	return token_open(ctx, key1, text, len, got);
}

/* Build a claims plaintext with the given field lengths; returns its length. */
static size_t
make_plaintext(uint8_t *pt, size_t cl, size_t sl, size_t scl)
{
	size_t	pos = 0;

	memset(pt, 0x11, 32);			/* jti, iat, exp */
	pos = 32;
	pt[pos++] = (uint8_t)cl;
	memset(pt + pos, 'c', cl);
	pos += cl;
	pt[pos++] = (uint8_t)(sl >> 8);
	pt[pos++] = (uint8_t)sl;
	memset(pt + pos, 'u', sl);
	pos += sl;
	pt[pos++] = (uint8_t)(scl >> 8);
	pt[pos++] = (uint8_t)scl;
	memset(pt + pos, 's', scl);
	pos += scl;
	return pos;
}

START_TEST(test_token_decode_strict)
{
	struct token_claims	got;
	uint8_t			pt[2048];
	size_t			n, i;

	/* The hand-made encoding is the real one. */
	n = make_plaintext(pt, 3, 2, 4);
	ck_assert_int_eq(open_plaintext(pt, n, &got), FA_OK);
	ck_assert_str_eq(got.client, "ccc");
	ck_assert_str_eq(got.subject, "uu");
	ck_assert_str_eq(got.scope, "ssss");
	ck_assert(got.iat == 0x1111111111111111ULL);
	n = make_plaintext(pt, FA_CLIENT_ID_MAX, FA_SUBJECT_MAX, FA_SCOPE_MAX);
	ck_assert_int_eq(open_plaintext(pt, n, &got), FA_OK);

	/* Trailing byte, and every truncation of the claims. */
	n = make_plaintext(pt, 3, 2, 4);
	pt[n] = 0;
	ck_assert_int_eq(open_plaintext(pt, n + 1, &got), FA_ERR);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(open_plaintext(pt, i, &got), FA_ERR);
	/* A length field pointing past the end. */
	n = make_plaintext(pt, 3, 2, 4);
	pt[n - 5] = 5;
	ck_assert_int_eq(open_plaintext(pt, n, &got), FA_ERR);
	/* A NUL inside each string. */
	n = make_plaintext(pt, 3, 2, 4);
	pt[34] = '\0';
	ck_assert_int_eq(open_plaintext(pt, n, &got), FA_ERR);
	n = make_plaintext(pt, 3, 2, 4);
	pt[38] = '\0';
	ck_assert_int_eq(open_plaintext(pt, n, &got), FA_ERR);
	n = make_plaintext(pt, 3, 2, 4);
	pt[n - 1] = '\0';
	ck_assert_int_eq(open_plaintext(pt, n, &got), FA_ERR);
	/* Empty client. */
	n = make_plaintext(pt, 0, 2, 4);
	ck_assert_int_eq(open_plaintext(pt, n, &got), FA_ERR);
	/* One over each limit. */
	n = make_plaintext(pt, FA_CLIENT_ID_MAX + 1, 0, 0);
	ck_assert_int_eq(open_plaintext(pt, n, &got), FA_ERR);
	n = make_plaintext(pt, 1, FA_SUBJECT_MAX + 1, 0);
	ck_assert_int_eq(open_plaintext(pt, n, &got), FA_ERR);
	n = make_plaintext(pt, 1, 0, FA_SCOPE_MAX + 1);
	ck_assert_int_eq(open_plaintext(pt, n, &got), FA_ERR);
	/* A failed open leaves no claims behind. */
	ck_assert_str_eq(got.client, "");
}
END_TEST

START_TEST(test_token_peek_kid)
{
	struct token_claims	c;
	char			text[TOKEN_MAX_LEN + 1];
	uint32_t		kid, kids[] = { 0, 1, 255, 256, 0xdeadbeef, UINT32_MAX };
	size_t			i;
	int			len, round;

	claims_basic(&c);
	/* Several seals per kid: the nonce bits after the kid vary. */
	for (i = 0; i < sizeof kids / sizeof kids[0]; i++) {
		for (round = 0; round < 16; round++) {
			len = token_seal(ctx, kids[i], key1, &c, text,
			    sizeof text);
			ck_assert_int_gt(len, 0);
			kid = kids[i] ^ 1;
			ck_assert_int_eq(token_peek_kid(text, len, &kid), FA_OK);
			ck_assert_uint_eq(kid, kids[i]);
		}
	}
	ck_assert_int_eq(token_peek_kid("fa1.", 4, &kid), FA_ERR);
	ck_assert_int_eq(token_peek_kid("", 0, &kid), FA_ERR);
	ck_assert_int_eq(token_peek_kid(text, 20, &kid), FA_ERR);
	memcpy(text, "fa1.!!!!!!!!", 12);
	ck_assert_int_eq(token_peek_kid(text, len, &kid), FA_ERR);
}
END_TEST

START_TEST(test_token_jti)
{
	uint8_t	a[TOKEN_JTI_LEN], b[TOKEN_JTI_LEN];

	ck_assert_int_eq(token_new_jti(a), FA_OK);
	ck_assert_int_eq(token_new_jti(b), FA_OK);
	ck_assert(memcmp(a, b, sizeof a) != 0);
}
END_TEST

START_TEST(test_token_garbage)
{
	static const char	*bad[] = {
		"", "fa1", "fa1.", "fa1.A", "fa2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"FA1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	struct token_claims	 got;
	char			 text[TOKEN_MAX_LEN + 1];
	size_t			 i;
	int			 n;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_int_eq(token_open(ctx, key1, bad[i], strlen(bad[i]),
		    &got), FA_ERR);
	/* Well-formed base64url of every plausible length, but forged. */
	memcpy(text, "fa1.", 4);
	for (n = 4; n < TOKEN_MAX_LEN; n++) {
		text[n] = 'A' + n % 26;
		ck_assert_int_eq(token_open(ctx, key1, text, n + 1, &got), FA_ERR);
	}
}
END_TEST

static Suite *
token_suite(void)
{
	Suite	*s = suite_create("token");
	TCase	*tc;

	tc = tcase_create("crypto");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_seal_roundtrip);
	tcase_add_test(tc, test_seal_tamper);
	tcase_add_test(tc, test_seal_wrong_key_aad);
	tcase_add_test(tc, test_hmac_rfc4231);
	tcase_add_test(tc, test_sha256);
	tcase_add_test(tc, test_memeq_hex_random);
	tcase_add_test(tc, test_nonce_fork);
	tcase_add_test(tc, test_nonce_distinct);
	suite_add_tcase(s, tc);

	tc = tcase_create("token");
	tcase_add_checked_fixture(tc, setup, teardown);
	/* Exhaustive tampering is slow under valgrind. */
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_token_roundtrip);
	tcase_add_test(tc, test_token_maximal);
	tcase_add_test(tc, test_token_empty_subject_scope);
	tcase_add_test(tc, test_token_every_char_modified);
	tcase_add_test(tc, test_token_truncated_extended);
	tcase_add_test(tc, test_token_wrong_key_prefix_kid);
	tcase_add_test(tc, test_token_field_limits);
	tcase_add_test(tc, test_token_decode_strict);
	tcase_add_test(tc, test_token_peek_kid);
	tcase_add_test(tc, test_token_jti);
	tcase_add_test(tc, test_token_garbage);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(token_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
