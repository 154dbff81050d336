"""Score crates/trent-indices/tests/fixtures/episodes.csv with comorbidipy 0.5.0 (PyPI) and
print the per-id numbers trent-indices' cross-check test embeds. Not run by CI; see run.sh.

comorbidipy 0.5.0 imports SettingWithCopyWarning from pandas.core.common, which pandas
1.5 moved to pandas.errors; the shim below restores the name (no behaviour change).
"""
import sys
import pandas.core.common as _c
import pandas.errors as _e

_c.SettingWithCopyWarning = _e.SettingWithCopyWarning
import pandas as pd
from comorbidipy import comorbidity, hfrs

path = sys.argv[1]
df = pd.read_csv(path, dtype=str)
# comorbidipy matches codes as given; trent normalises. Give comorbidipy the normalised
# form (no dot, no SUS filler X) so the comparison is of the algorithms, not the parsing.
df["code"] = df["code"].str.replace(".", "", regex=False).str.upper().str.rstrip("X")


def show(title, out, col):
    print(title)
    for _, r in out.sort_values("id").iterrows():
        print(f"  {r['id']} {r[col]:g}")


for weighting in ["charlson", "quan"]:
    out = comorbidity(df.copy(), age=None, score="charlson", variant="quan", weighting=weighting)
    show(f"charlson quan mapping, {weighting} weights", out, "comorbidity_score")
out = comorbidity(df.copy(), age=None, score="charlson", variant="shmi", weighting="shmi", assign0=False)
show("charlson shmi mapping, shmi weights, assign0=False", out, "comorbidity_score")
out = comorbidity(df.copy(), age=None, score="elixhauser", variant="quan", weighting="vw")
show("elixhauser quan mapping, vw weights", out, "comorbidity_score")
show("hfrs", hfrs(df.copy()), "hfrs")
