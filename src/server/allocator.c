/*
 * allocator: reports the malloc implementation linked by configure
 * --with-allocator. Linking -ljemalloc or -lmimalloc replaces malloc(3)
 * process-wide; the check below asks the allocator itself whether it owns a
 * block that malloc(3) returned, so --version cannot claim an allocator that
 * the dynamic linker did not actually bind.
 */
#include <stdio.h>
#include <stdlib.h>

#include "server/allocator.h"

#if defined(FA_ALLOCATOR_JEMALLOC)
#include <jemalloc/jemalloc.h>
#elif defined(FA_ALLOCATOR_MIMALLOC)
#include <mimalloc.h>
#else
#include <gnu/libc-version.h>
#endif

int
allocator_describe(char *buf, size_t len)
{
	char version[64];
	void *p;
	int owned;

	if ((p = malloc(64)) == NULL) {
		snprintf(buf, len, "%s (malloc failed)", FA_ALLOCATOR);
		return -1;
	}
#if defined(FA_ALLOCATOR_JEMALLOC)
	{
		const char *v = "?";
		size_t vsz = sizeof(v), asz;
		unsigned arena;

		(void)mallctl("version", &v, &vsz, NULL, 0);
		snprintf(version, sizeof(version), "%s", v);
		asz = sizeof(arena);
		/* arenas.lookup fails for a pointer jemalloc does not own. */
		owned = mallctl("arenas.lookup", &arena, &asz, &p, sizeof(p)) == 0;
	}
#elif defined(FA_ALLOCATOR_MIMALLOC)
	{
		int v = mi_version();

		snprintf(version, sizeof(version), "%d.%d.%d", v / 100,
		    (v / 10) % 10, v % 10);
		owned = mi_is_in_heap_region(p);
	}
#else
	snprintf(version, sizeof(version), "%s", gnu_get_libc_version());
	owned = 1;	/* glibc is what every other allocator would replace */
#endif
	free(p);
	snprintf(buf, len, "%s %s%s", FA_ALLOCATOR, version,
	    owned ? "" : " (NOT serving malloc)");
	return owned ? 0 : -1;
}
