"""Reference values for trent-stats' tests, computed by running PHStatsMethods.

PHStatsMethods (DHSC/UKHSA, GPL-3, PyPI) is *run* here, never copied: its outputs are
pasted as numbers into crates/trent-stats/tests/*.rs with a comment naming this script.
Run through bench/methods/run.sh, which installs it in a venv under /tmp. Not run by CI.
"""

import warnings

import pandas as pd
import PHStatsMethods as ph

warnings.filterwarnings("ignore")
pd.set_option("display.width", 250)
pd.set_option("display.max_columns", 40)
pd.set_option("display.precision", 15)


def show(title, df):
    print(f"== {title}")
    print(df.to_string())
    print()


CONF = [0.95, 0.998]

# 1. proportions (Wilson)
prop = pd.DataFrame({"g": ["a", "b", "c", "d", "e"],
                     "num": [65, 0, 50, 8200, 3],
                     "den": [100, 50, 50, 10000, 7]})
show("proportion", ph.ph_proportion(prop, "num", "den", "g", confidence=CONF))

# 2. crude rates (Byar, exact below 10)
rate = pd.DataFrame({"g": ["a", "b", "c", "d", "e"],
                     "num": [1, 5, 9, 10, 150],
                     "den": [10000, 10000, 20000, 20000, 120000]})
show("rate", ph.ph_rate(rate, "num", "den", "g", confidence=CONF, multiplier=100000))
print("exact upper for 0 events, 95%:", ph.exact_upper(0, 0.95), "99.8%:", ph.exact_upper(0, 0.998))
print()

# 3. DSR (ESP2013, 19 bands)
bands = ['0-4', '5-9', '10-14', '15-19', '20-24', '25-29', '30-34', '35-39', '40-44',
         '45-49', '50-54', '55-59', '60-64', '65-69', '70-74', '75-79', '80-84', '85-89', '90+']
ev_a = [3, 0, 1, 2, 4, 5, 6, 9, 12, 20, 31, 45, 70, 102, 150, 210, 260, 240, 190]
pop_a = [5800, 6100, 6000, 5900, 6400, 7000, 7200, 6900, 6600, 6800, 7100, 6700, 6000,
         5500, 4800, 3600, 2500, 1400, 700]
ev_b = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 2, 0, 1, 2, 1, 1]
pop_b = [300] * 19
dsr = pd.DataFrame({"g": ["a"] * 19 + ["b"] * 19, "age": bands * 2,
                    "num": ev_a + ev_b, "den": pop_a + pop_b})
show("dsr", ph.ph_dsr(dsr, "num", "den", "age", "g", confidence=CONF))

# 4. ISR ratio and rate: 5 bands, reference counts/pops
isr = pd.DataFrame({"g": ["a"] * 5 + ["b"] * 5,
                    "obs": [2, 5, 20, 60, 80, 0, 1, 2, 1, 3],
                    "pop": [2000, 1800, 1500, 900, 400, 500, 450, 300, 200, 100],
                    "ref_n": [400, 900, 4000, 9000, 12000] * 2,
                    "ref_p": [500000, 400000, 300000, 150000, 60000] * 2})
show("isratio x100", ph.ph_ISRatio(isr, "obs", "pop", "ref_n", "ref_p", "g", confidence=CONF, refvalue=100))
show("israte per 100000", ph.ph_ISRate(isr, "obs", "pop", "ref_n", "ref_p", "g", confidence=CONF, multiplier=100000))

# 6. funnels
fp = pd.DataFrame({"num": [30, 45, 12, 80, 5, 160], "den": [100, 120, 60, 200, 40, 350]})
lim = ph.calculate_funnel_limits(fp, "num", "proportion", 100, "den")
show("funnel proportion limits (rows 0,1,9,49,99)", lim.iloc[[0, 1, 9, 49, 99]])
show("funnel proportion significance", ph.assign_funnel_significance(fp.copy(), "num", "proportion", "den"))

fr = pd.DataFrame({"obs": [12, 30, 4, 55, 0, 21], "exp": [10.5, 20.2, 8.1, 60.3, 3.2, 20.0]})
lim = ph.calculate_funnel_limits(fr, "obs", "ratio", 1, "exp", ratio_type="isr")
show("funnel ratio (isr) limits (rows 0,1,9,49,99)", lim.iloc[[0, 1, 9, 49, 99]])
show("funnel ratio significance", ph.assign_funnel_significance(fr.copy(), "obs", "ratio", "exp"))

fc = pd.DataFrame({"num": [40, 75, 12, 200, 3, 90], "den": [50000, 80000, 20000, 150000, 9000, 60000]})
fc["rate"] = fc["num"] / fc["den"] * 100000
lim = ph.calculate_funnel_limits(fc, "num", "rate", 100000, "den", rate="rate", rate_type="crude", years_of_data=1)
show("funnel crude rate limits (rows 0,1,9,49,99)", lim.iloc[[0, 1, 9, 49, 99]])
show("funnel crude rate significance",
     ph.assign_funnel_significance(fc.copy(), "num", "rate", "den", rate="rate", rate_type="crude", multiplier=100000))
