# Shared by the hook executables: the plugin's own virtualenv at <repo>/.venv, created on first use.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NSELF_ANALYTICS_VENV:-$ROOT/.venv}"
ensure_venv() {
    if [ ! -x "$VENV/bin/nself-analytics" ] || [ "$ROOT/setup.cfg" -nt "$VENV/.installed${NSELF_ANALYTICS_EXTRAS:-}" ]; then
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check -e "$ROOT${NSELF_ANALYTICS_EXTRAS:-}"
        touch "$VENV/.installed${NSELF_ANALYTICS_EXTRAS:-}"
    fi
}
cd "$ROOT"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
