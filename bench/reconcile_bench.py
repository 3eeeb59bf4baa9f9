"""Benchmark of ``dancu reconcile`` (issue: reconciliation of sectoral files).

Builds, once per work directory:

- a register of N synthetic people (``dancu.registry.seeding``, default 200,000) in a fresh
  database of the chosen backend;
- a sectoral file of M rows (default 60,000) drawn from the register with the corruption real
  files carry: IDs with spaces or dots, names without diacritics or in capitals, dates as
  ``DD/MM/YYYY`` and other forms, addresses in old (pre-2025) or new units, some wrong fields,
  unknown, malformed and missing IDs, old CMND numbers, deceased people, repeated rows.

Then runs ``dancu reconcile FILE --out DIR`` in a child process, as an official
would, and reports its wall time, peak memory and the stage timings from ``summary.json``
as JSON lines (copy them into docs/benchmarks.md with the date and machine).

    .venv/bin/python bench/reconcile_bench.py                       # 60k rows vs 200k people
    .venv/bin/python bench/reconcile_bench.py --backend postgresql
    .venv/bin/python bench/reconcile_bench.py --repeat 40            # a 2.4M-row file: memory
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from common import emit
from dancu import bootstrap
from dancu.db import make_engine
from dancu.geo.models import (
    Commune,
    CommuneConversion,
    LegacyCommune,
    LegacyDistrict,
    LegacyProvince,
    Province,
)
from dancu.registry import seeding
from dancu.registry.models import Citizen
from dancu.vn import names as vn_names

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/dancu_bench_reconcile"
HEADER = ["STT", "Số CCCD", "Họ và tên", "Ngày sinh", "Giới tính", "Địa chỉ thường trú", "SĐT"]


def _database(backend: str, workdir: Path, citizens: int) -> str:
    """A database holding ``citizens`` seeded people (reused when it already does)."""
    if backend == "sqlite":
        url = f"sqlite:///{workdir / f'register_{citizens}.db'}"
    else:
        url = PG_URL.replace("dancu_bench_reconcile", f"dancu_bench_reconcile_{citizens}")
        admin = create_engine(PG_URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = url.rsplit("/", 1)[1]
            if not conn.execute(text(f"SELECT 1 FROM pg_database WHERE datname='{name}'")).first():
                conn.execute(text(f"CREATE DATABASE {name}"))
        admin.dispose()
    engine = make_engine(url)
    bootstrap.prepare(engine)
    with Session(engine) as session:
        held = int(session.scalar(select(func.count()).select_from(Citizen)) or 0)
        if held != citizens:
            if held:
                raise SystemExit(f"{url} holds {held} people, not {citizens}: remove it first")
            started = time.perf_counter()
            seeding.seed(session, citizens, 7, bootstrap.commune_weights(session))
            session.commit()
            emit(bench="reconcile_setup", step="seed", citizens=citizens, backend=backend,
                  seconds=round(time.perf_counter() - started, 1))  # fmt: skip
    engine.dispose()
    return url


def _legacy_units(session: Session) -> dict[str, list[str]]:
    """2025 commune -> old-unit texts ("Phường X, Quận Y, Tỉnh Z") of the communes it took in."""
    rows = session.execute(
        select(
            CommuneConversion.commune_code,
            LegacyCommune.name,
            LegacyDistrict.name,
            LegacyProvince.name,
        )
        .join(LegacyCommune, LegacyCommune.code == CommuneConversion.legacy_commune_code)
        .join(LegacyDistrict, LegacyDistrict.code == LegacyCommune.district_code)
        .join(LegacyProvince, LegacyProvince.code == LegacyCommune.province_code)
    ).all()
    out: dict[str, list[str]] = {}
    for code, commune, district, province in rows:
        out.setdefault(code, []).append(f"{commune}, {district}, {province}")
    return out


def _date_text(rng: random.Random, born: str, precision: str) -> str:
    y, m, d = born.split("-")
    if precision == "year":
        return y
    if precision == "month":
        return f"{m}/{y}"
    form = rng.random()
    if form < 0.70:
        return f"{d}/{m}/{y}"
    if form < 0.80:
        return f"{int(d)}/{int(m)}/{y}"
    if form < 0.90:
        return born
    if form < 0.95:
        return f"{d}{m}{y}"
    return y


def build_file(url: str, path: Path, rows: int, seed: int = 11) -> dict[str, int]:
    """Write the sectoral CSV; return how many rows of each kind of corruption it holds."""
    rng = random.Random(seed)
    engine = create_engine(url)
    with Session(engine) as session:
        people = session.execute(
            select(
                Citizen.personal_id, Citizen.legacy_id_number, Citizen.full_name,
                Citizen.birth_date, Citizen.birth_date_precision, Citizen.sex, Citizen.status,
                Citizen.permanent_commune_code, Citizen.permanent_address,
            ).order_by(Citizen.personal_id)
        ).all()  # fmt: skip
        communes = dict(
            session.execute(
                select(Commune.code, Commune.name + ", " + Province.name).join(
                    Province, Province.code == Commune.province_code
                )
            ).all()
        )
        legacy = _legacy_units(session)
    engine.dispose()
    alive = [p for p in people if p.status == "alive"]
    dead = [p for p in people if p.status == "deceased"]
    with_legacy = [p for p in alive if p.legacy_id_number and len(p.legacy_id_number) == 12]
    codes = sorted(communes)
    counts: dict[str, int] = {}

    def note(kind: str) -> None:
        counts[kind] = counts.get(kind, 0) + 1

    # people drawn without replacement, so that only the repeated rows are duplicates
    drawn = iter(rng.sample(alive, min(len(alive), rows)))
    written: list[list[str]] = []
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for n in range(1, rows + 1):
            if written and rng.random() < 0.02:
                note("repeated row")
                line = [str(n), *written[rng.randrange(len(written))][1:]]
                writer.writerow(line)
                continue
            p = rng.choice(dead) if dead and rng.random() < 0.02 else next(drawn)
            pid = p.personal_id
            kind = rng.random()
            if kind < 0.03:
                pid, _ = f"{rng.randrange(10**12):012d}", note("unknown ID")
            elif kind < 0.04:
                pid, _ = pid[:-1], note("11-digit ID")
            elif kind < 0.06:
                pid, _ = "", note("missing ID")
            elif kind < 0.07 and with_legacy:
                p = rng.choice(with_legacy)
                pid, _ = p.legacy_id_number, note("old CMND number")
            elif kind < 0.17:
                pid, _ = f"{pid[:3]} {pid[3:6]} {pid[6:]}", note("ID with spaces")
            elif kind < 0.20:
                pid, _ = f"{pid[:3]}.{pid[3:6]}.{pid[6:]}", note("ID with dots")
            name = p.full_name
            style = rng.random()
            if style < 0.25:
                name, _ = vn_names.fold(name), note("name without diacritics")
            elif style < 0.35:
                name, _ = name.upper(), note("name in capitals")
            if rng.random() < 0.03:
                name, _ = name.rsplit(" ", 1)[0] + " Khác", note("wrong name")
            born = _date_text(rng, p.birth_date.isoformat(), p.birth_date_precision)
            if rng.random() < 0.02:
                born, _ = str(p.birth_date.year + 1), note("wrong birth year")
            elif rng.random() < 0.005:
                born, _ = "không rõ", note("date that is not a date")
            sex = p.sex
            if rng.random() < 0.01:
                sex, _ = ("F" if sex == "M" else "M"), note("wrong sex")
            sex = {"M": "Nam", "F": "Nữ"}[sex] if rng.random() < 0.8 else sex
            code = p.permanent_commune_code
            if rng.random() < 0.02:
                code, _ = rng.choice(codes), note("other commune")
            units = communes.get(code or "", "")
            if code and code in legacy and rng.random() < 0.3:
                units, _ = rng.choice(legacy[code]), note("address in old units")
            street = (p.permanent_address or "").replace(",", "")
            address = f"{street}, {units}" if street and units else units
            phone = f"09{rng.randrange(10**8):08d}"
            line = [str(n), pid, name, born, sex, address, phone]
            writer.writerow(line)
            if len(written) < 5000:
                written.append(line)
    return counts


def _repeat(source: Path, target: Path, times: int) -> int:
    """``source``'s rows ``times`` over (a larger file for the memory figure)."""
    with source.open(encoding="utf-8") as fh:
        header, *body = fh.readlines()
    with target.open("w", encoding="utf-8") as out:
        out.write(header)
        for _ in range(times):
            out.writelines(body)
    return len(body) * times


def measure(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run ``command`` under /usr/bin/time: (wall seconds, peak resident KB, stdout)."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "maxrss_kb=%M", *command],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"reconcile failed:\n{done.stderr[-4000:]}")
    return seconds, int(done.stderr.rsplit("maxrss_kb=", 1)[1].split()[0]), done.stdout


def run_reconcile(url: str, path: Path, out: Path, backend: str, rows: int) -> None:
    env = {**os.environ, "DANCU_DATABASE_URL": url}
    seconds, peak_kb, stdout = measure(
        [sys.executable, "-m", "dancu", "reconcile", str(path), "--out", str(out)], env
    )
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    emit(
        bench="reconcile",
        backend=backend,
        rows=rows,
        file_mb=round(path.stat().st_size / 1e6, 1),
        register=summary["register"],
        wall_seconds=round(seconds, 2),
        peak_rss_mb=round(peak_kb / 1024),
        stages=summary["timings"],
        rows_per_second=round(rows / seconds),
        statuses=summary["statuses"],
        mismatched_fields=summary["mismatched_fields"],
        duplicates=summary["duplicates"],
        found_by_legacy_number=summary["found_by_legacy_number"],
        output=stdout.strip(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workdir", type=Path, default=Path("bench/data"))
    parser.add_argument("--repeat", type=int, default=1, help="Repeat the file's rows K times.")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    url = _database(args.backend, args.workdir, args.citizens)
    path = args.workdir / f"sectoral_{args.rows}.csv"
    if not path.exists():
        counts = build_file(url, path, args.rows)
        emit(bench="reconcile_setup", step="file", rows=args.rows, corruption=counts)
    rows = args.rows
    if args.repeat > 1:
        big = args.workdir / f"sectoral_{args.rows}x{args.repeat}.csv"
        rows = _repeat(path, big, args.repeat)
        path = big
    for _ in range(args.runs):
        run_reconcile(url, path, args.workdir / "reconcile_out", args.backend, rows)


if __name__ == "__main__":
    main()
