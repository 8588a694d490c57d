# Sourced by the bin/ scripts: creates ./venv (the virtualenv Pulumi.yaml names, shared with the
# Pulumi CLI) and installs the pinned packages, again only when a requirements file has changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/venv"
want="$1"  # requirements.txt or requirements-dev.txt
stamp="$VENV/.installed-$(cat "$ROOT/requirements.txt" "$ROOT/$want" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$ROOT/$want" -c "$ROOT/constraints.txt"
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
