#!/usr/bin/env bash
# Lint and type-check, as CI does (scripts/dev.sh test runs this before pytest):
#   ruff on everything, mypy on the Qt-free core and the command line (all of gpuops/), and no
#   noqa / type: ignore without a reason.
# mypy cannot follow setuptools' editable-install finder (core/ installs as gpuops.core), so it
# reads the package through a throwaway tree of symlinks laid out as the wheel installs it.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${GPUOPS_VENV:-$repo/.venv}/bin"

"$bin/ruff" check "$repo"

# A `noqa` or `type: ignore` says why after it (`# noqa: B027 - ...`, `# type: ignore[x]  # ...`).
bare='#[[:space:]]*(type:[[:space:]]*ignore(\[[^]]*\])?|noqa(:[[:space:]]*[A-Z]+[0-9]+([[:space:]]*,[[:space:]]*[A-Z]+[0-9]+)*)?)[[:space:]]*$'
if found=$(cd "$repo" && git ls-files -z '*.py' | xargs -0 grep -nE "$bare"); then
    echo "$found"
    echo "lint: noqa / type: ignore without a reason: say why after it" >&2
    exit 1
fi

tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/gpuops"
for entry in "$repo"/gpuops/*; do ln -s "$entry" "$tree/gpuops/"; done
for folder in core gui resources; do ln -s "$repo/$folder" "$tree/gpuops/$folder"; done
cd "$tree"
"$bin/mypy" --config-file "$repo/pyproject.toml" --cache-dir "$repo/.mypy_cache" \
    -p gpuops.core -p gpuops.commands -m gpuops -m gpuops.__main__ -m gpuops.cli
