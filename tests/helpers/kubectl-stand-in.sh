#!/usr/bin/env bash
# Test stand-in for kubectl: drops everything up to `--` (the `exec` into the headscale pod)
# and runs the rest here, where headscale is the test's own and HEADSCALE_CONFIG points at it.
set -euo pipefail
while (($#)) && [[ $1 != -- ]]; do shift; done
(($#)) || { echo "kubectl stand-in: no -- in the command" >&2; exit 2; }
shift
exec "$@"
