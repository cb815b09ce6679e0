#!/bin/bash
# man_lint.sh -- every manual page (man/*.[0-9], in the source tree, and in
# the build tree when configure generates them) passes
# "mandoc -Tlint -W warning" without a word of output.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require mandoc

declare -A seen=()
pages=()
for dir in "$top_builddir/man" "$top_srcdir/man"; do
	for f in "$dir"/*.[0-9]; do
		[ -f "$f" ] || continue
		b=$(basename "$f")
		# A page generated in the build tree wins over its source.
		[ -n "${seen[$b]:-}" ] && continue
		seen[$b]=1
		pages+=("$f")
	done
done
[ ${#pages[@]} -gt 0 ] || die "no manual pages found in $top_srcdir/man"

# The pages make install installs must all be there.
if [ -f "$top_srcdir/Makefile.am" ]; then
	# man_MANS = a b \ (continued) c
	listed=$(sed -e ':a' -e '/\\$/N' -e 's/\\\n//' -e 'ta' "$top_srcdir/Makefile.am" |
	    sed -n 's/^man_MANS *= *//p')
	for b in $listed; do
		b=$(basename "$b")
		if [ -n "${seen[$b]:-}" ]; then
			pass "man_MANS page $b exists"
		else
			fail "man_MANS page $b exists" "not in $top_srcdir/man or $top_builddir/man"
		fi
	done
fi

for f in "${pages[@]}"; do
	rc=0
	out=$(mandoc -Tlint -W warning "$f" 2>&1) || rc=$?
	if [ "$rc" = 0 ] && [ -z "$out" ]; then
		pass "mandoc -Tlint -W warning ${f#"$top_srcdir"/}: clean"
	else
		fail "mandoc -Tlint -W warning ${f#"$top_srcdir"/}: clean (exit $rc)" \
		    "$(printf '%s\n' "$out" | head -n 50)"
	fi
done
