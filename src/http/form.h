/*
 * form.h -- application/x-www-form-urlencoded parsing (RFC 6749 §B) with limits.
 *
 * Names and values are percent-decoded ('+' is a space). A parameter sent twice
 * is an error (RFC 6749 §3.1: "parameters MUST NOT be included more than once").
 * The parsed form points into its own copy; nothing refers to the input.
 */
#ifndef FORM_H
#define FORM_H

#include <stddef.h>

struct arena;
struct form;

enum form_error {
	FORM_OK = 0,
	FORM_ERR_SYNTAX,	/* bad percent-encoding, NUL byte, empty name */
	FORM_ERR_DUPLICATE,	/* a name appears twice; form_error_name() says which */
	FORM_ERR_TOO_MANY,	/* more than max_params parameters */
};

/*
 * Parse len bytes. Returns a form (free with form_free) or NULL with *err set;
 * on FORM_ERR_DUPLICATE, *dupname (if not NULL) receives the name (caller frees).
 */
struct form *form_parse(const char *body, size_t len, int max_params,
	    enum form_error *err, char **dupname);
/*
 * The same, with the form allocated in a request's arena: it lives until
 * the arena's reset, which wipes it; form_free does nothing to it.
 */
struct form *form_parse_in(struct arena *, const char *body, size_t len,
	    int max_params, enum form_error *err, char **dupname);
void	form_free(struct form *);
/* Value of name, or NULL when absent. Valid until form_free. */
const char *form_get(const struct form *, const char *name);
/* Number of parameters. */
int	form_count(const struct form *);
/* The i-th parameter in order of appearance; NULL past the end. */
const char *form_name(const struct form *, int i);
const char *form_value(const struct form *, int i);
/*
 * Percent-decode n bytes into out (n+1 bytes), '+' as space; NUL-terminates.
 * Returns the decoded length, or FA_ERR on a bad escape or a decoded NUL.
 */
int	form_urldecode(const char *in, size_t n, char *out);

#endif
