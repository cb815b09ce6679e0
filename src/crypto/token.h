/*
 * token.h -- sealed access tokens.
 *
 * Text form: "fa1." base64url( kid[4, big-endian] | nonce[12] | ciphertext | tag[16] ).
 * The plaintext is a compact binary claim set; the AAD is "fa1" | kid, so the
 * version and key id cannot be changed without failing the tag.
 */
#ifndef TOKEN_H
#define TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "core/fastauth.h"
#include "crypto/crypto.h"

#define TOKEN_JTI_LEN	16
/* Longest token text (without NUL) for maximal claims. */
#define TOKEN_MAX_LEN	2048

struct token_claims {
	uint8_t	 jti[TOKEN_JTI_LEN];		/* random */
	uint64_t iat;				/* seconds since epoch */
	uint64_t exp;				/* seconds since epoch */
	char	 client[FA_CLIENT_ID_MAX + 1];	/* NUL-terminated */
	char	 subject[FA_SUBJECT_MAX + 1];	/* "" for client_credentials */
	char	 scope[FA_SCOPE_MAX + 1];	/* space-separated */
};

/*
 * Seal claims under key kid; writes the NUL-terminated text to out (outcap
 * bytes, TOKEN_MAX_LEN + 1 is always enough). Returns the text length, or
 * FA_ERR (fields too long, outcap too small).
 */
int	token_seal(struct crypto_ctx *, uint32_t kid, const uint8_t key[CRYPTO_KEYLEN],
	    const struct token_claims *, char *out, size_t outcap);
/* Read the key id of a token without opening it. FA_OK, or FA_ERR if not a fa1 token. */
int	token_peek_kid(const char *tok, size_t len, uint32_t *kid);
/*
 * Verify and decode a token with key (which must be the key of its kid).
 * FA_OK, or FA_ERR for anything malformed, tampered or sealed with another
 * key. Does not look at exp: the caller compares it with the clock.
 */
int	token_open(struct crypto_ctx *, const uint8_t key[CRYPTO_KEYLEN],
	    const char *tok, size_t len, struct token_claims *out);
/* Fill jti with random bytes. FA_OK or FA_ERR. */
int	token_new_jti(uint8_t jti[TOKEN_JTI_LEN]);

#endif
