#!/usr/bin/env bash
# The main job: install what is missing, build, and run the whole suite against the embedded lab.
# Reports go to ${ESTLAB_OUT:-estlab-out}/. Extra arguments are passed to `estlab run`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
exec "${ESTLAB_BUILD_DIR:-$root/build}/cli/estlab" run --out "${ESTLAB_OUT:-$root/estlab-out}" "$@"
