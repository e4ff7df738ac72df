#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine:
#   bash scripts/dev.sh run  [gpuops args...]   set up, then launch the console
#   bash scripts/dev.sh test [pytest args...]   set up, lint (scripts/lint.sh), then run the whole test suite
# Setting up = the system libraries Qt (and the tests) need, a virtualenv in .venv, and
# gpuops installed into it in editable mode. Each step is skipped when already done.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
mode="${1:-}"
[ $# -gt 0 ] && shift

# What Qt needs on a bare image (offscreen included), and what a real X display adds.
qt_base=(libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3)
qt_xcb=(libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0
        libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxcb-xinerama0 libxkbcommon-x11-0)
# The tests compile a fake NVML driver with gcc and start a throwaway PostgreSQL server.
test_tools=(gcc libc6-dev desktop-file-utils prometheus prometheus-alertmanager poppler-utils openssl postgresql)

die() { echo "gpuops setup: $*" >&2; exit 1; }

missing_packages() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
    done
}

ensure_packages() {
    command -v dpkg-query >/dev/null || die "not a Debian/Ubuntu system: install the equivalents of: $*"
    local missing
    missing=$(missing_packages "$@" | tr '\n' ' ')
    [ -z "${missing// }" ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            die "missing system packages: ${missing}— install them with: sudo apt-get install -y ${missing}"
        fi
    fi
    echo "gpuops setup: installing system packages: ${missing}" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null \
        || die "could not install system packages: ${missing}"
}

find_python() {
    local candidate
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    die "Python 3.11 or newer not found: install it with: sudo apt-get install -y python3 python3-venv"
}

ensure_venv() {
    local python stamp want
    python=$(find_python)
    if [ ! -x "$venv/bin/python" ]; then
        "$python" -c 'import ensurepip' 2>/dev/null || ensure_packages python3-venv
        "$python" -m venv "$venv" || die "could not create $venv (is python3-venv installed?)"
    fi
    stamp="$venv/.gpuops-installed"
    want=$(sha256sum < "$repo/pyproject.toml" | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        "$venv/bin/python" -m pip install -q --upgrade pip >&2
        "$venv/bin/python" -m pip install -q -e "$repo[test]" >&2
        echo "$want" > "$stamp"
    fi
}

case "$mode" in
    run)
        ensure_packages "${qt_base[@]}" "${qt_xcb[@]}"
        ensure_venv
        exec "$venv/bin/gpuops" "$@"
        ;;
    test)
        ensure_packages "${qt_base[@]}" "${test_tools[@]}"
        ensure_venv
        cd "$repo"
        # ruff and mypy first: a finding fails the run before the (much longer) suite starts.
        GPUOPS_VENV="$venv" bash "$repo/scripts/lint.sh" || die "lint failed: fix the ruff or mypy findings above"
        export QT_QPA_PLATFORM=offscreen
        exec "$venv/bin/python" -m pytest "$@"
        ;;
    *)
        echo "usage: bash scripts/dev.sh run [gpuops args...] | test [pytest args...]" >&2
        exit 2
        ;;
esac
