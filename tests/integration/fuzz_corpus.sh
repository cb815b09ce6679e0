#!/bin/bash
# fuzz_corpus.sh -- run every built fuzz target tests/fuzz/fuzz_<name> over
# its seed corpus tests/fuzz/corpus/<name>/.  Without --enable-fuzzing the
# targets are linked with tests/fuzz/replay.c, which runs each file once; a
# libFuzzer build gets -runs=0, which does the same.  A crash, a sanitizer
# report or a non-zero exit fails; so does a target without a corpus.
# FUZZ_WRAPPER (e.g. "valgrind --error-exitcode=99 -q") runs each under it.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

targets=()
for f in "$top_builddir"/tests/fuzz/fuzz_*; do
	case $f in *.c|*.o|*.h) continue ;; esac
	[ -f "$f" ] && [ -x "$f" ] && targets+=("$f")
done
[ ${#targets[@]} -gt 0 ] ||
    die "no fuzz targets built in $top_builddir/tests/fuzz (make check builds them)"

# Every fuzz_*.c source must have been built.
for src in "$top_srcdir"/tests/fuzz/fuzz_*.c; do
	[ -f "$src" ] || continue
	b=$(basename "$src" .c)
	if [ -x "$top_builddir/tests/fuzz/$b" ]; then
		pass "$b is built"
	else
		fail "$b is built" "$top_builddir/tests/fuzz/$b missing"
	fi
done

for f in "${targets[@]}"; do
	name=$(basename "$f")
	corpus=$top_srcdir/tests/fuzz/corpus/${name#fuzz_}
	n=$(find "$corpus" -maxdepth 1 -type f 2>/dev/null | wc -l)
	if [ "$n" = 0 ]; then
		fail "$name has a seed corpus" "$corpus is missing or empty"
		continue
	fi
	rc=0
	# shellcheck disable=SC2086
	timeout 600 ${FUZZ_WRAPPER:-} "$f" -runs=0 "$corpus" >"$T/$name.log" 2>&1 || rc=$?
	if [ "$rc" = 0 ] && ! grep -Eq 'ERROR: (Address|Undefined|Leak|Memory)Sanitizer|runtime error:' "$T/$name.log"; then
		pass "$name: $n corpus inputs ($(tail -n 1 "$T/$name.log"))"
	else
		fail "$name on $corpus (exit $rc)" "$(tail -n 30 "$T/$name.log")"
	fi
done
