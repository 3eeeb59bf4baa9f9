"""The suggestion track against Splink 5 on the same accuracy benchmark (issue 5 §3: "Splink
on DuckDB, or something that measurably beats it").

Both see the same rows (the `not_found`, `invalid_id`, `missing_id` and `mismatch` rows of
the accuracy file, normalised by dancu's own front end) and the same register. Splink gets a
conventional setup for people data: Jaro-Winkler on the folded full name with term-frequency
adjustment, its date-of-birth comparison, exact sex, exact commune with term frequencies,
Damerau-Levenshtein on the ID digits; blocking on folded name + birth year + month, given name
+ birth date, sorted name words + year, birth date + commune, folded name + commune, the ID;
u by random sampling, the prior from a deterministic rule, m by EM on two blocking rules. A
suggestion is Splink's best match per row when its match probability reaches the same 0.95.

    .venv/bin/python bench/reconcile_splink.py --workdir /tmp/rec/data --seed 7
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from common import emit
from dancu.reconcile import suggest
from dancu.reconcile.exact import Workspace
from dancu.reconcile.normalise import AddressResolver, Normaliser
from dancu.reconcile.reader import open_source
from reconcile_corrupt import iter_truth

THRESHOLD = 0.95

_LEFT = """
SELECT CAST(input_row AS VARCHAR) AS uid, name_fold AS fold, name_last AS last,
    name_sorted AS sorted, birth_year AS yr, birth_month AS mo,
    CASE WHEN birth_day IS NOT NULL THEN make_date(birth_year, birth_month, birth_day)::VARCHAR
    END AS dob, sex, address_candidates[1] AS commune, nullif(id_digits, '') AS id_digits
FROM rows WHERE status IN ('not_found', 'invalid_id', 'missing_id', 'mismatch')
"""

_RIGHT = """
SELECT pid AS uid, fold, last, sorted, yr, mo,
    CASE WHEN dy IS NOT NULL THEN make_date(yr, mo, dy)::VARCHAR END AS dob, sex, commune,
    pid AS id_digits
FROM people
"""


def tables(workdir: Path, seed: int) -> tuple[pa.Table, pa.Table]:
    """The rows to suggest for and the register, as dancu's suggestion track sees them."""
    register = workdir / f"register_200000_{seed}.parquet"
    source = open_source(workdir / f"sectoral_60000_{seed}.csv", columns=None, sheet=None)
    resolver = AddressResolver(parallel=False)
    workspace = Workspace(workdir / "splink_scratch", memory_limit="2GB")
    normaliser = Normaliser(resolver)
    for batch in source.batches:
        workspace.add(normaliser.batch(batch))
    workspace.load_snapshot(register)
    workspace.add_addresses(resolver.collect())
    workspace.check()
    suggest.load_people_from_snapshot(workspace.con, register)
    workspace.con.execute(suggest._ROWS)
    left = workspace.con.sql(_LEFT).to_arrow_table()
    right = workspace.con.sql(_RIGHT).to_arrow_table()
    workspace.close()
    return left, right


def run_splink(left: pa.Table, right: pa.Table) -> tuple[dict[str, tuple[str, float]], float]:
    """Splink's best match per row (uid -> (pid, probability)) and the seconds it took."""
    started = time.perf_counter()
    db = DuckDBAPI()
    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="uid",
        comparisons=[
            cl.JaroWinklerAtThresholds("fold", [0.95, 0.88]).configure(
                term_frequency_adjustments=True
            ),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.ExactMatch("sex"),
            cl.ExactMatch("commune").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("id_digits", [1]),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("fold", "yr", "mo"),
            block_on("last", "dob"),
            block_on("sorted", "yr"),
            block_on("dob", "commune"),
            block_on("fold", "commune"),
            block_on("id_digits"),
        ],
    )
    linker = Linker(
        [db.register(left, table_name="rows_l"), db.register(right, table_name="people_r")],
        settings,
    )
    linker.training.estimate_probability_two_random_records_match(
        [block_on("fold", "dob")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("fold", "yr"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    predictions = linker.inference.predict(threshold_match_probability=0.01)
    rows = {str(u) for u in left.column("uid").to_pylist()}
    best: dict[str, tuple[str, float]] = {}
    for record in predictions.as_record_list():
        uid, pid = str(record["uid_l"]), str(record["uid_r"])
        if uid not in rows:  # Splink orders the two sides its own way
            uid, pid = pid, uid
        probability = float(record["match_probability"])
        if uid not in best or probability > best[uid][1]:
            best[uid] = (pid, probability)
    return best, time.perf_counter() - started


def score(best: dict[str, tuple[str, float]], truth: list[dict[str, Any]]) -> dict[str, Any]:
    """Precision and recall of the suggestions at THRESHOLD, as reconcile_accuracy counts."""
    made = right = due = found = 0
    for t in truth:
        got = best.get(str(t["row"]))
        suggested = got[0] if got and got[1] >= THRESHOLD else ""
        if suggested:
            made += 1
            right += suggested == t["person"] and bool(t["in_register"])
        if t["suggested_id"]:
            due += 1
            found += suggested == t["suggested_id"]
    return {
        "made": made,
        "right": right,
        "precision": round(right / made, 5) if made else 1.0,
        "due": due,
        "recall": round(found / due, 5) if due else 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("bench/data"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    left, right = tables(args.workdir, args.seed)
    best, seconds = run_splink(left, right)
    truth = list(iter_truth(args.workdir / f"truth_60000_{args.seed}.parquet"))
    pending = {str(u) for u in left.column("uid").to_pylist()}
    emit(
        bench="reconcile_splink",
        seed=args.seed,
        rows=len(pending),
        register=right.num_rows,
        splink_seconds=round(seconds, 1),
        splink=score(best, [t for t in truth if str(t["row"]) in pending or t["suggested_id"]]),
    )


if __name__ == "__main__":
    main()
