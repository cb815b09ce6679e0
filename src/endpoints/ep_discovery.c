/*
 * ep_discovery.c -- authorization server metadata (RFC 8414), served also as
 * /.well-known/openid-configuration (OpenID Connect Discovery).
 *
 * The document depends only on the issuer, so it is built once per process
 * and served with a strong ETag and Cache-Control: public, letting the web
 * server's cache or a CDN answer it (the third cache tier) and clients
 * revalidate with If-None-Match for a 304.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/xmalloc.h"
#include "crypto/crypto.h"
#include "endpoints/ep_discovery.h"
#include "endpoints/service.h"
#include "http/request.h"

char *
ep_discovery_build(const char *issuer, char etag[24])
{
	struct buf b = BUF_INIT;
	uint8_t h[CRYPTO_HASHLEN];
	char hex[2 * CRYPTO_HASHLEN + 1], *url;
	int first = 1;

	buf_putc(&b, '{');
	json_kv_str(&b, &first, "issuer", issuer);
#define EP_URL(key, path) do {					\
	url = xasprintf("%s%s", issuer, path);			\
	json_kv_str(&b, &first, key, url);			\
	free(url);						\
} while (0)
	EP_URL("token_endpoint", "/oauth2/token");
	EP_URL("introspection_endpoint", "/oauth2/introspect");
	EP_URL("revocation_endpoint", "/oauth2/revoke");
	EP_URL("userinfo_endpoint", "/oauth2/userinfo");
	/* An extension (RFC 8414 §2 allows more members): batch introspection. */
	EP_URL("fastauth_introspection_batch_endpoint", "/oauth2/introspect/batch");
#undef EP_URL
	json_kv_raw(&b, &first, "grant_types_supported",
	    "[\"client_credentials\",\"password\",\"refresh_token\"]");
	json_kv_raw(&b, &first, "response_types_supported", "[]");
	json_kv_raw(&b, &first, "scopes_supported", "[\"openid\",\"profile\",\"email\"]");
	json_kv_raw(&b, &first, "subject_types_supported", "[\"public\"]");
	json_kv_raw(&b, &first, "claims_supported",
	    "[\"sub\",\"name\",\"given_name\",\"family_name\",\"email\","
	    "\"email_verified\"]");
	json_kv_raw(&b, &first, "token_endpoint_auth_methods_supported",
	    "[\"client_secret_basic\",\"client_secret_post\"]");
	json_kv_raw(&b, &first, "introspection_endpoint_auth_methods_supported",
	    "[\"client_secret_basic\",\"client_secret_post\"]");
	json_kv_raw(&b, &first, "revocation_endpoint_auth_methods_supported",
	    "[\"client_secret_basic\",\"client_secret_post\"]");
	buf_putc(&b, '}');

	crypto_sha256(b.data, b.len, h);
	crypto_hex(h, 8, hex);
	snprintf(etag, 24, "\"%.16s\"", hex);
	return b.data;
}

/* Does an If-None-Match list (RFC 9110 §13.1.2, weak comparison) match etag? */
static int
ep_discovery_match(const char *inm, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = inm;

	while (*p != '\0') {
		size_t len;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return 1;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		len = strcspn(p, ", \t");
		if (len == elen && memcmp(p, etag, elen) == 0)
			return 1;
		p += len;
	}
	return 0;
}

void
ep_discovery_handle(struct service_thread *t, struct request *r, struct response *resp)
{
	struct service *svc = t->svc;
	char cc[48];

	snprintf(cc, sizeof cc, "public, max-age=%ld", svc->cfg->discovery_max_age);
	response_header(resp, "Cache-Control", cc);
	response_header(resp, "ETag", svc->discovery_etag);
	if (r->if_none_match != NULL &&
	    ep_discovery_match(r->if_none_match, svc->discovery_etag)) {
		resp->status = 304;
		return;
	}
	response_json(resp, 200, svc->discovery, strlen(svc->discovery));
}
