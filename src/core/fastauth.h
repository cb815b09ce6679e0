/*
 * fastauth.h -- the project's return codes and a few limits every module shares.
 *
 * Every function that can fail returns one of these; the reason travels in a
 * "char **cause" out-parameter (allocated, caller frees) or an errstr on a
 * context, never only in a log line.
 */
#ifndef FASTAUTH_H
#define FASTAUTH_H

#define FA_OK        0
#define FA_ERR      -1	/* failure; see cause/errstr */
#define FA_NOTFOUND -2	/* the thing asked for does not exist */
#define FA_UNAVAIL  -3	/* the store cannot be reached: fail closed (503) */
#define FA_DENIED   -4	/* authentication or authorisation refused */
#define FA_LIMIT    -5	/* a size or count limit was hit */

/* Field limits shared by tokens, the store and the endpoints (bytes, without NUL). */
#define FA_CLIENT_ID_MAX 128
#define FA_SUBJECT_MAX   256
#define FA_SCOPE_MAX     1024

#define FA_UNUSED(x) ((void)(x))

#endif
