#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each.
#
# Go's fuzzing coordinator (up to Go 1.26) can report a bare "context deadline exceeded" when
# -fuzztime runs out while a worker is mid-call on a loaded machine (go.dev/issue/75804): no
# input failed. Such a run, with no "Failing input written", is run once more; anything else,
# and a second failure, fails.
set -euo pipefail
FUZZTIME="${FUZZTIME:-10s}"
status=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
		for attempt in 1 2; do
			echo "fuzz $pkg $f (attempt $attempt)"
			log=$(mktemp)
			if go test "$pkg" -run '^$' -fuzz "^$f\$" -fuzztime "$FUZZTIME" 2>&1 | tee "$log"; then
				rm -f "$log"
				break
			fi
			if [ "$attempt" = 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
				echo "fuzz $f: the coordinator's deadline race (no failing input); running it again"
				rm -f "$log"
				continue
			fi
			rm -f "$log"
			status=1
			break
		done
	done
done
exit "$status"
