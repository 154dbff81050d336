"""Link records.csv with Splink (DuckDB backend) using the same fields and blocking
rules as trent-link, and write source,record_id,cluster_id.

Usage: splink_link.py RECORDS.csv CLUSTERS.csv [THRESHOLD]

Preprocessing (not timed, done for Splink only; trent does its own inside the timed
run): names upper-cased with punctuation removed, NHS numbers failing the modulus-11
check set to null, postcodes upper-cased with one space, Soundex of the family name
and birth year as blocking columns. The timed part is everything Splink does: model
set-up, lambda, u by random sampling, EM, prediction and clustering.
"""

import re
import sys
import time

import duckdb
import pandas as pd
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on


def nhs_valid(s):
    if not isinstance(s, str):
        return None
    d = re.sub(r"[ -]", "", s)
    if not re.fullmatch(r"\d{10}", d) or len(set(d)) == 1:
        return None
    total = sum(int(c) * (10 - i) for i, c in enumerate(d[:9]))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return d if check != 10 and check == int(d[9]) else None


def norm_name(s):
    if not isinstance(s, str):
        return None
    s = re.sub(r"[^A-Z ]", "", re.sub(r"[-\s]+", " ", s.upper())).strip()
    return s or None


def norm_pc(s):
    if not isinstance(s, str):
        return None
    s = s.replace(" ", "").upper()
    return f"{s[:-3]} {s[-3:]}" if len(s) >= 5 else None


CODES = {**dict.fromkeys("BFPV", "1"), **dict.fromkeys("CGJKQSXZ", "2"),
         **dict.fromkeys("DT", "3"), "L": "4", **dict.fromkeys("MN", "5"), "R": "6",
         **dict.fromkeys("HW", "h")}


def soundex(s):
    if not isinstance(s, str):
        return None
    letters = [c for c in s if "A" <= c <= "Z"]
    if not letters:
        return None
    out, last = letters[0], CODES.get(letters[0], "0")
    for c in letters[1:]:
        code = CODES.get(c, "0")
        if code == "h":
            continue
        if code != "0" and code != last:
            out += code
            if len(out) == 4:
                break
        last = code
    return out.ljust(4, "0")


# EM sessions: the two the Splink tutorials use (date of birth; full name). Adding
# postcode + family initial makes Splink's clusters much worse here (households).
EM_RULES = [block_on("birth_date"), block_on("given_name", "family_name")]


def main():
    src, dst = sys.argv[1], sys.argv[2]
    threshold = float(sys.argv[3]) if len(sys.argv) > 3 else 0.95
    df = pd.read_csv(src, dtype=str, keep_default_na=False, na_values=[""])
    t_pre = time.perf_counter()
    df["unique_id"] = df["source"] + "|" + df["record_id"]
    df["given_name"] = df["given_name"].map(norm_name)
    df["family_name"] = df["family_name"].map(norm_name)
    df["nhs_number"] = df["nhs_number"].map(nhs_valid)
    df["postcode"] = df["postcode"].map(norm_pc)
    df["family_soundex"] = df["family_name"].map(soundex)
    df["birth_year"] = df["birth_date"].str[:4]
    df["family_initial"] = df["family_name"].str[:1]
    df = df[["unique_id", "source", "record_id", "nhs_number", "given_name",
             "family_name", "birth_date", "sex", "postcode", "family_soundex",
             "birth_year", "family_initial"]]
    pre_s = time.perf_counter() - t_pre

    t0 = time.perf_counter()
    con = duckdb.connect()
    db_api = DuckDBAPI(connection=con)
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[
            block_on("nhs_number"),
            block_on("birth_date"),
            block_on("postcode", "family_initial"),
            block_on("family_soundex", "birth_year"),
            block_on("given_name", "family_name"),
        ],
        comparisons=[
            cl.NameComparison("given_name", jaro_winkler_thresholds=[0.92, 0.8])
            .configure(term_frequency_adjustments=True),
            cl.NameComparison("family_name", jaro_winkler_thresholds=[0.92, 0.8])
            .configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birth_date", input_is_string=True,
                                     datetime_format="%Y-%m-%d"),
            cl.ExactMatch("sex"),
            cl.PostcodeComparison("postcode"),
            cl.ExactMatch("nhs_number"),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    sdf = db_api.register(df)
    linker = Linker(sdf, settings, log_level=30)
    # lambda from the NHS-number rule; ~85% of matching pairs both have a valid number
    linker.training.estimate_probability_two_random_records_match(
        [block_on("nhs_number")], recall=0.85)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    for rule in EM_RULES:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    pred = linker.inference.predict(threshold_match_probability=min(threshold, 0.5))
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        pred, threshold_match_probability=threshold)
    out = clusters.as_pandas_dataframe()[["unique_id", "cluster_id"]]
    total_s = time.perf_counter() - t0
    out[["source", "record_id"]] = out["unique_id"].str.split("|", n=1, expand=True)
    out[["source", "record_id", "cluster_id"]].to_csv(dst, index=False)
    print(f"splink_preprocess_seconds={pre_s:.2f}")
    print(f"splink_seconds={total_s:.2f}")


if __name__ == "__main__":
    main()
