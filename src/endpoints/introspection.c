/*
 * introspection.c -- the RFC 7662 object of an active access token.
 *
 * Written with fixed key fragments and json_quote for the values only: in a
 * batch this object is most of the work after the decryption, and going
 * through json_kv_* for each key (quoting constant keys again every time)
 * cost a third of it. The output is byte for byte what json_kv_* wrote.
 */
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "crypto/crypto.h"
#include "crypto/token.h"
#include "endpoints/introspection.h"

#define INTROSPECTION_PUT(b, lit)	buf_append((b), (lit), sizeof(lit) - 1)

/* A non-negative decimal (exp and iat are seconds since the epoch). */
static void
introspection_uint(struct buf *b, unsigned long long v)
{
	char tmp[24], *p = tmp + sizeof tmp;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

void
introspection_active_json(struct buf *b, const struct token_claims *c, const char *issuer)
{
	char jti[2 * TOKEN_JTI_LEN + 1];

	if (c->scope[0] != '\0') {
		INTROSPECTION_PUT(b, "{\"active\":true,\"scope\":");
		json_quote(b, c->scope, strlen(c->scope));
		INTROSPECTION_PUT(b, ",\"client_id\":");
	} else
		INTROSPECTION_PUT(b, "{\"active\":true,\"client_id\":");
	json_quote(b, c->client, strlen(c->client));
	INTROSPECTION_PUT(b, ",\"token_type\":\"Bearer\",\"exp\":");
	introspection_uint(b, (unsigned long long)c->exp);
	INTROSPECTION_PUT(b, ",\"iat\":");
	introspection_uint(b, (unsigned long long)c->iat);
	if (c->subject[0] != '\0') {
		INTROSPECTION_PUT(b, ",\"sub\":");
		json_quote(b, c->subject, strlen(c->subject));
	}
	INTROSPECTION_PUT(b, ",\"iss\":");
	json_quote(b, issuer, strlen(issuer));
	crypto_hex(c->jti, TOKEN_JTI_LEN, jti);
	INTROSPECTION_PUT(b, ",\"jti\":\"");
	buf_append(b, jti, 2 * TOKEN_JTI_LEN);
	INTROSPECTION_PUT(b, "\"}");
}
