#!/usr/bin/env bash
# Runs shellcheck on every shell script of the repository (`make lint`):
# files named *.sh, files whose first line is a sh/bash shebang, and files
# that declare `# shellcheck shell=...` (sourced modules). Run from the
# clone's root so that `# shellcheck source=hack/...` paths resolve.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

is_shell() {
  [[ "$1" == *.sh ]] && return 0
  head -n 1 "$1" | grep -Eq '^#!(/usr)?/bin/(env )?(ba|da)?sh\b' && return 0
  grep -q '^# shellcheck shell=' "$1"
}

scripts=()
while IFS= read -r -d '' f; do
  [[ -f "${f}" ]] && is_shell "${f}" && scripts+=("${f}")
done < <(git ls-files -z --cached --others --exclude-standard -- hack .ci)
[[ ${#scripts[@]} -gt 0 ]] || { echo "shellcheck: no scripts found" >&2; exit 1; }
shellcheck --external-sources "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts, no findings"
