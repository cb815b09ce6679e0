/*
 * setup.h -- what fastauth-load needs before it starts: clients and users
 * (created with fastauthctl, or read from flags and a users file) and the
 * access tokens the workload presents, fetched over plain blocking HTTP.
 */
#ifndef SETUP_H
#define SETUP_H

#include "load/load.h"

#define SETUP_USERS_MAX		100000
#define SETUP_NAME_MAX		64	/* fastauth's username limit */
#define SETUP_PASSWORD_MAX	256

/*
 * Create a client for the legitimate workload, one for the attackers and
 * nusers users through "fastauthctl -c conf", with names unique to this run;
 * fills cfg's credentials and users. FA_OK, or FA_ERR with *cause (allocated).
 */
int	setup_fastauthctl(struct load_cfg *, const char *ctl, const char *conf,
	    int nusers, char **cause);
/* Read "username:password" lines (blank lines and # comments skipped). */
int	setup_users_file(struct load_cfg *, const char *path, char **cause);
/*
 * Fetch ncc client_credentials tokens (for introspection and forgeries) and,
 * when want_user_tokens, one access token per user up to 16 by the password
 * grant (for UserInfo). FA_OK or FA_ERR with *cause.
 */
int	setup_tokens(struct load_cfg *, size_t ncc, int want_user_tokens, char **cause);
/* Can the server be reached at all? FA_OK, or FA_ERR with *cause. */
int	setup_probe(const struct load_cfg *, char **cause);
/* Free what setup put into cfg. */
void	setup_free(struct load_cfg *);

#endif
