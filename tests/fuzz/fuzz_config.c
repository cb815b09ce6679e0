/*
 * fuzz_config.c -- libFuzzer target for config.c.
 *
 * Per input:
 *  1. the input as a configuration file (config_load_buffer): must not crash;
 *     a failure must come with a cause naming the file; an accepted file
 *     must dump (config_dump) to text that loads again into the same
 *     configuration (but for a redis_url holding a password, which the dump
 *     leaves out), and config_validate must answer either way;
 *  2. the input's lines as an environment (config_load_env): must not crash,
 *     and the same dump round trip must hold after it.
 * A broken property calls abort(), which libFuzzer and the replay driver both
 * report as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/fastauth.h"
#include "core/xmalloc.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_config: %s\n", what);
		abort();
	}
}

/* config_dump of cfg must load into a fresh config that dumps the same. */
static void
fuzz_round_trip(const struct config *cfg)
{
	struct buf d1 = BUF_INIT, d2 = BUF_INIT;
	struct config *again = config_new();
	char *cause = NULL;

	config_dump(cfg, &d1);
	if (config_load_buffer(again, "dump", d1.data, d1.len, &cause) != FA_OK) {
		fprintf(stderr, "fuzz_config: %s\n%s", cause, d1.data);
		abort();
	}
	/* A redis_url with a password is left out of the dump: carry it over. */
	if (strcmp(again->redis_url, cfg->redis_url) != 0 &&
	    config_set(again, "redis_url", cfg->redis_url, &cause) != FA_OK)
		fuzz_check(0, "redis_url does not set again");
	config_dump(again, &d2);
	fuzz_check(strcmp(d1.data, d2.data) == 0, "dump does not reload the same");
	free(cause);
	cause = NULL;
	if (config_validate(cfg, &cause) != FA_OK)
		fuzz_check(cause != NULL, "validate failed without a cause");
	free(cause);
	buf_free(&d1);
	buf_free(&d2);
	config_free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = config_new();
	char *cause = NULL, *copy, **envp, *p;
	size_t n, i;

	if (config_load_buffer(cfg, "fuzz.conf", (const char *)data, size,
	    &cause) == FA_OK) {
		fuzz_check(cause == NULL, "cause set on success");
		fuzz_round_trip(cfg);
	} else
		fuzz_check(cause != NULL && strncmp(cause, "fuzz.conf:", 10) == 0,
		    "failure without a cause naming the file");
	free(cause);
	cause = NULL;
	config_free(cfg);

	/* Lines as environment entries (a NUL ends an entry early, as in C). */
	copy = xmalloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (n = 1, i = 0; i < size; i++)
		n += copy[i] == '\n';
	envp = xcalloc(n + 1, sizeof *envp);
	for (i = 0, p = copy; i < n; i++) {
		envp[i] = p;
		if ((p = strchr(p, '\n')) == NULL)
			break;
		*p++ = '\0';
	}
	cfg = config_new();
	if (config_load_env(cfg, envp, &cause) == FA_OK)
		fuzz_round_trip(cfg);
	else
		fuzz_check(cause != NULL && strncmp(cause, "environment: ", 13) == 0,
		    "env failure without a cause");
	free(cause);
	config_free(cfg);
	free(envp);
	free(copy);
	return 0;
}
