/*
 * json.h -- minimal JSON writer on top of struct buf (responses are small and
 * fixed-shape; parsing, when needed, is jansson's job).
 */
#ifndef JSON_H
#define JSON_H

#include <stddef.h>

struct buf;

/* Append s (n bytes, any content) as a quoted, escaped JSON string. */
void	json_quote(struct buf *, const char *s, size_t n);
/* Append "key":"value" (value escaped), with a leading comma unless first. */
void	json_kv_str(struct buf *, int *first, const char *key, const char *value);
void	json_kv_int(struct buf *, int *first, const char *key, long long value);
void	json_kv_bool(struct buf *, int *first, const char *key, int value);
/* Append "key": followed by raw, already-valid JSON text. */
void	json_kv_raw(struct buf *, int *first, const char *key, const char *raw);

#endif
