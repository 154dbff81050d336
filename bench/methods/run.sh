#!/usr/bin/env bash
# Print the reference values trent-stats' tests embed. Not run by CI.
#
# Python: installs PHStatsMethods from PyPI in a venv under /tmp and runs reference.py.
# R: needs R with PHEindicatormethods installed in $R_REF_LIB (default /tmp/Rlib), e.g.
#   R CMD INSTALL -l /tmp/Rlib <PHEindicatormethods source tree>   (or install.packages)
# and, for SPC, an NHSRplotthedots source tree in $PTD_SRC (its R files are sourced, so
# its plotting dependencies are not needed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${VENV:-/tmp/phstats-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q PHStatsMethods==0.1.16
fi
"$venv/bin/python" -c 'import importlib.metadata as m; print("PHStatsMethods", m.version("PHStatsMethods"))'
"$venv/bin/python" "$here/reference.py"
if command -v Rscript >/dev/null; then
  Rscript "$here/reference.R"
else
  echo "Rscript not found: skipping the life expectancy, SII and SPC references" >&2
fi
