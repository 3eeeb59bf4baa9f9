"""Accuracy of ``dancu reconcile`` against a generated truth (issue 5, Accuracy).

Builds (once per work directory) a synthetic nation, splits it into a register snapshot and
outsiders, and writes a sectoral file with ground truth (``reconcile_corrupt``); then runs
``reconcile`` on it and compares the results with the truth:

* **status macro-F1**: the F1 of each of the six statuses, averaged;
* **field accuracy**: over the rows whose true status is ``match`` or ``mismatch``, the share
  whose ``mismatched_fields`` is exactly right (and, per field, the share of rows right about
  that field); ``personal_id`` accuracy over all rows;
* **suggestion precision**: of the rows given a ``suggested_id``, the share naming the true
  person (any suggestion for a person outside the register is wrong);
* **suggestion recall**: of the rows that should get one (status ``not_found``,
  ``invalid_id``, ``missing_id`` or ``mismatch``, and the true person is in the register), the
  share given the true person; also reported for the *hard* rows only, those whose ID is
  missing, malformed, unknown or someone else's (a ``mismatch`` row carrying the person's own
  ID is easy: its suggestion is that ID);
* **duplicate F1**: a row's ``duplicate_of`` is right when it names the first earlier row about
  the same person (true duplicates: rows about a person already met in the file).

    .venv/bin/python bench/reconcile_accuracy.py                    # 60k rows, 200k people
    .venv/bin/python bench/reconcile_accuracy.py --seed 12 --errors /tmp/errors.csv
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

from common import emit
from dancu.reconcile.service import reconcile
from reconcile_corrupt import (
    Rates,
    commune_weights,
    generate_file,
    iter_truth,
    split_nation,
    write_register,
    write_truth,
)

STATUSES = ("match", "mismatch", "deceased", "not_found", "invalid_id", "missing_id")
FIELDS = ("full_name", "birth_date", "sex", "address")


def build(workdir: Path, citizens: int, rows: int, seed: int) -> tuple[Path, Path, Path]:
    """The register snapshot, the sectoral file and its truth (reused when present)."""
    register = workdir / f"register_{citizens}_{seed}.parquet"
    sectoral = workdir / f"sectoral_{rows}_{seed}.csv"
    truth = workdir / f"truth_{rows}_{seed}.parquet"
    if register.exists() and sectoral.exists() and truth.exists():
        return register, sectoral, truth
    weights = commune_weights(workdir)
    started = time.perf_counter()
    people, outsiders = split_nation(citizens, max(citizens // 100, 10), seed, weights)
    write_register(people, register)
    made = generate_file(people, outsiders, sectoral, rows, seed=seed + 4, rates=Rates())
    write_truth(made, truth)
    emit(bench="reconcile_accuracy_setup", citizens=citizens, rows=rows, seed=seed,
         seconds=round(time.perf_counter() - started, 1), corruption=made.kinds)  # fmt: skip
    return register, sectoral, truth


def _f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def calibration(
    results: list[dict[str, str]], truth: list[dict[str, Any]], thresholds: list[float]
) -> dict[str, Any]:
    """From a run with threshold 0 (every best candidate given with its score): precision and
    recall at each threshold, and how often the best candidate is right per score band."""
    pairs = []
    for got, want in zip(results, truth, strict=True):
        score = float(got["suggestion_score"]) if got["suggestion_score"] else None
        right = (
            bool(got["suggested_id"])
            and got["suggested_id"] == want["person"]
            and bool(want["in_register"])
        )
        pairs.append((score, right, bool(want["suggested_id"])))
    due = sum(1 for _, _, d in pairs if d)
    curve = {}
    for t in thresholds:
        made = [(s, r) for s, r, _ in pairs if s is not None and s >= t]
        right = sum(1 for _, r in made if r)
        found = sum(1 for s, r, d in pairs if d and r and s is not None and s >= t)
        curve[str(t)] = {
            "made": len(made),
            "wrong": len(made) - right,
            "precision": round(right / len(made), 5) if made else 1.0,
            "recall": round(found / due, 5) if due else 1.0,
        }
    bands = [0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.01]
    reliability = []
    for lo, hi in pairwise(bands):
        inside = [r for s, r, _ in pairs if s is not None and lo <= s < hi]
        if inside:
            reliability.append(
                {"band": f"[{lo}, {min(hi, 1.0)}{']' if hi > 1 else ')'}", "rows": len(inside),
                 "right": round(sum(inside) / len(inside), 4)}
            )  # fmt: skip
    return {"due": due, "curve": curve, "reliability": reliability}


def evaluate(
    results: list[dict[str, str]], truth: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The figures, and the rows where the results and the truth disagree."""
    assert len(results) == len(truth), (len(results), len(truth))
    errors: list[dict[str, Any]] = []
    confusion: Counter[tuple[str, str]] = Counter()
    field_rows = field_right = pid_right = 0
    per_field = Counter[str]()
    sug_made = sug_right = sug_due = sug_found = hard_due = hard_found = 0
    dup_pred = dup_true = dup_tp = 0
    for got, want in zip(results, truth, strict=True):
        assert int(got["row"]) == int(want["row"])
        problems = []
        confusion[(want["status"], got["status"])] += 1
        if want["status"] != got["status"]:
            problems.append("status")
        if got["personal_id"] == want["personal_id"]:
            pid_right += 1
        else:
            problems.append("personal_id")
        if want["status"] in ("match", "mismatch"):
            field_rows += 1
            wanted = set(filter(None, want["mismatched_fields"].split(";")))
            found = set(filter(None, got["mismatched_fields"].split(";")))
            field_right += wanted == found
            for f in FIELDS:
                per_field[f] += (f in wanted) == (f in found)
            if wanted != found:
                problems.append("fields")
        due = want["suggested_id"]
        made = got["suggested_id"]
        hard = bool(due) and due != want["personal_id"]
        if made:
            sug_made += 1
            sug_right += made == want["person"] and want["in_register"]
            if not (made == want["person"] and want["in_register"]):
                problems.append("wrong suggestion")
        if due:
            sug_due += 1
            sug_found += made == due
            hard_due += hard
            hard_found += hard and made == due
            if made != due and not made:
                problems.append("no suggestion")
        dup_want, dup_got = str(want["duplicate_of"]), got["duplicate_of"]
        dup_pred += bool(dup_got)
        dup_true += bool(dup_want)
        dup_tp += bool(dup_got) and dup_got == dup_want
        if dup_got != dup_want:
            problems.append("duplicate_of")
        if problems:
            errors.append(
                {"row": want["row"], "problems": ";".join(problems), "kinds": want["kinds"],
                 "want": {k: want[k] for k in ("status", "personal_id", "mismatched_fields",
                                               "suggested_id", "duplicate_of", "person")},
                 "got": {k: got[k] for k in ("status", "personal_id", "mismatched_fields",
                                             "suggested_id", "suggestion_score",
                                             "duplicate_of")}}
            )  # fmt: skip
    f1s = {}
    for s in STATUSES:
        tp = confusion[(s, s)]
        fp = sum(c for (w, g), c in confusion.items() if g == s and w != s)
        fn = sum(c for (w, g), c in confusion.items() if w == s and g != s)
        if tp + fn:
            f1s[s] = round(_f1(tp, fp, fn)[2], 5)
    dp, dr, df = _f1(dup_tp, dup_pred - dup_tp, dup_true - dup_tp)
    figures = {
        "rows": len(truth),
        "status_macro_f1": round(sum(f1s.values()) / len(f1s), 5),
        "status_f1": f1s,
        "field_accuracy": round(field_right / field_rows, 5) if field_rows else 1.0,
        "field_accuracy_per_field": {
            f: round(per_field[f] / field_rows, 5) if field_rows else 1.0 for f in FIELDS
        },
        "personal_id_accuracy": round(pid_right / len(truth), 5),
        "suggestions": {
            "made": sug_made,
            "right": sug_right,
            "precision": round(sug_right / sug_made, 5) if sug_made else 1.0,
            "due": sug_due,
            "recall": round(sug_found / sug_due, 5) if sug_due else 1.0,
            "hard_due": hard_due,
            "hard_recall": round(hard_found / hard_due, 5) if hard_due else 1.0,
        },
        "duplicates": {
            "true": dup_true,
            "found": dup_pred,
            "right": dup_tp,
            "precision": round(dp, 5),
            "recall": round(dr, 5),
            "f1": round(df, 5),
        },
    }
    return figures, errors


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("bench/data"))
    parser.add_argument("--errors", type=Path, help="Write the rows in error here (CSV).")
    parser.add_argument(
        "--calibrate", action="store_true",
        help="Also run with threshold 0: precision and recall per threshold, score reliability.",
    )  # fmt: skip
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    register, sectoral, truth_path = build(args.workdir, args.citizens, args.rows, args.seed)
    out = args.workdir / f"accuracy_out_{args.seed}"
    started = time.perf_counter()
    summary = reconcile(None, sectoral, out, register=register)
    seconds = time.perf_counter() - started
    figures, errors = evaluate(read_csv(out / "results.csv"), list(iter_truth(truth_path)))
    emit(
        bench="reconcile_accuracy", citizens=args.citizens, seed=args.seed,
        seconds=round(seconds, 1), timings=summary.timings, **figures,
    )  # fmt: skip
    if args.calibrate:
        reconcile(None, sectoral, out, register=register, threshold=0.0)
        emit(bench="reconcile_calibration", citizens=args.citizens, seed=args.seed,
             **calibration(read_csv(out / "results.csv"), list(iter_truth(truth_path)),
                           [0.5, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999]))  # fmt: skip
    if args.errors:
        with args.errors.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, ["row", "problems", "kinds", "want", "got"])
            writer.writeheader()
            writer.writerows(errors)


if __name__ == "__main__":
    main()
