#!/usr/bin/env bash
# Print comorbidipy's scores for the fixture trent-indices' cross-check test embeds, and
# (if trent is built) trent's own output for the same file. Not run by CI.
#
# Installs comorbidipy 0.5.0 from PyPI in a venv under /tmp (pandas pinned to 1.5.3,
# numpy < 2: comorbidipy 0.5.0 predates pandas 2).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${VENV:-/tmp/comorbidipy-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q comorbidipy==0.5.0 pandas==1.5.3 "numpy<2"
fi
"$venv/bin/python" -c 'import importlib.metadata as m; print("comorbidipy", m.version("comorbidipy"), "pandas", m.version("pandas"))'
"$venv/bin/python" "$here/reference.py" "${1:-$root/crates/trent-indices/tests/fixtures/episodes.csv}"
