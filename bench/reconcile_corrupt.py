"""Sectoral files with ground truth: a corruption model for Vietnamese data (issue 5, Accuracy).

A synthetic nation (``dancu.registry.synth``) is split into a *register* and a few
*outsiders* (people the register does not hold). A sectoral file is then drawn from both, row
by row, with the errors real ministry files carry, and for each row the generator records what
the right answer is: the true person, the status and mismatched fields CONTRACTS §3 gives, the
person a suggestion should name, and the earlier row it duplicates.

The truth is worked out from what the generator *did*, not by running the project's
normalisers: a name with its diacritics stripped is still the same name, a swapped day and
month is another date, an address written in the old units stands for the 2025 communes the
official conversion table gives. Only the contract's comparison rules are applied (a fold of
its own, partial-date agreement, commune sets), so a bug in the reader, the normalisers or the
SQL shows up as a disagreement.

Corruptions (rates per row, drawn independently, so several may meet in one row; see
:class:`Rates`):

* ID: spaces or dots, missing, one-digit typo, adjacent transposition, a leading zero lost
  (an 11-digit number exported from a spreadsheet), the old 9-digit CMND number, someone else's
  ID (a household member's, or a stranger's);
* name: diacritics stripped (``đ`` as ``d``), capitals, NFD, the new tone placement
  (``Hoà`` for ``Hòa``), given-name-first order, middle name dropped, a typing error;
* birth date: ``DD/MM/YYYY``, ``D/M/YYYY``, ``YYYY-MM-DD``, ``DD-MM-YYYY``, ``DD.MM.YYYY``,
  ``DDMMYYYY``; year or month only; day and month swapped; a wrong day or year; unreadable;
* sex: ``Nam/Nữ``, ``M/F``, ``Nu``, ``male/female``; wrong; missing;
* address: the 2025 units or the old ones (street part first), missing, a commune the person
  moved away from;
* people: not in the register, deceased, repeated rows (an exact copy or the same person
  written again with fresh errors).
"""

from __future__ import annotations

import csv
import random
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from dancu import bootstrap
from dancu.db import make_engine
from dancu.geo.loader import read_source
from dancu.registry import synth

HEADER = ["STT", "Số CCCD", "Họ và tên", "Ngày sinh", "Giới tính", "Địa chỉ thường trú", "SĐT"]
TRUTH_COLUMNS = (
    "row", "person", "in_register", "status", "personal_id", "mismatched_fields",
    "suggested_id", "duplicate_of", "kinds",
)  # fmt: skip
FIELDS = ("full_name", "birth_date", "sex", "address")


@dataclass(frozen=True, slots=True)
class Rates:
    """How often each corruption happens (share of rows). Plausible for a ministry's file:
    most rows are clean apart from the way they are written; a few percent carry real errors."""

    outsider: float = 0.015  # the person is not in the register
    deceased: float = 0.01  # a deceased person's row
    repeat: float = 0.02  # the same person again, later in the file
    repeat_exact: float = 0.4  # ... as an exact copy (else written again, fresh errors)
    id_spaced: float = 0.12
    id_missing: float = 0.05
    id_typo: float = 0.015
    id_transposed: float = 0.007
    id_zero_lost: float = 0.005
    id_legacy: float = 0.015  # the old 9-digit CMND number (people who have one)
    id_other: float = 0.01  # someone else's ID
    name_stripped: float = 0.25
    name_upper: float = 0.10
    name_nfd: float = 0.05
    name_new_tone: float = 0.5  # of the names where tone placement differs
    name_reordered: float = 0.01
    name_middle_dropped: float = 0.015
    name_typo: float = 0.02
    date_partial_year: float = 0.015
    date_partial_month: float = 0.005
    date_swapped: float = 0.008
    date_wrong_day: float = 0.005
    date_wrong_year: float = 0.005
    date_unreadable: float = 0.002
    sex_wrong: float = 0.005
    sex_missing: float = 0.02
    address_missing: float = 0.05
    address_old_units: float = 0.30
    address_moved: float = 0.03


# ------------------------------------------------------------------------------ the register


def commune_weights(workdir: Path) -> list[synth.CommuneWeight]:
    """The communes and their weights for ``synth.generate``, from a small database of the
    administrative units made once in ``workdir``."""
    engine = make_engine(f"sqlite:///{workdir / 'units.db'}")
    bootstrap.prepare(engine)
    with Session(engine) as session:
        weights = bootstrap.commune_weights(session)
    engine.dispose()
    return weights


def split_nation(
    n: int, outsiders: int, seed: int, weights: Sequence[synth.CommuneWeight]
) -> tuple[pa.Table, pa.Table]:
    """``n + outsiders`` synthetic people; ``outsiders`` of them (chosen at random) are left
    out of the register. Returns (register, outsiders) in the interchange format."""
    nation = pa.Table.from_batches(list(synth.generate(n + outsiders, seed, weights)))
    rng = np.random.default_rng(seed + 1)
    out = np.zeros(nation.num_rows, dtype=bool)
    out[rng.choice(nation.num_rows, outsiders, replace=False)] = True
    return nation.filter(pa.array(~out)), nation.filter(pa.array(out))


def write_register(table: pa.Table, path: Path) -> Path:
    """A register snapshot (the format of ``dancu registry export``)."""
    pq.write_table(table, path, compression="zstd")
    return path


# ------------------------------------------------------------------------------ units


@dataclass(slots=True)
class Units:
    """How a commune is written: in the 2025 units, or in the old ones it was made from."""

    new_text: dict[str, str]  # 2025 commune -> "Xã X, Tỉnh Y"
    old: dict[str, list[tuple[str, str]]]  # 2025 commune -> [(old code, "Phường, Quận, Tỉnh")]
    old_targets: dict[str, frozenset[str]]  # old code -> every 2025 commune it went to
    by_province: dict[str, list[str]]  # 2025 province -> its communes

    @classmethod
    def load(cls) -> Units:
        src = read_source()
        provinces = {p.code: p.name for p in src.provinces}
        new_text = {c.code: f"{c.name}, {provinces[c.province_code]}" for c in src.communes}
        by_province: dict[str, list[str]] = {}
        for c in src.communes:
            by_province.setdefault(c.province_code, []).append(c.code)
        old_provinces = {p.code: p.name for p in src.legacy_provinces}
        districts = {d.code: d.name for d in src.legacy_districts}
        old_text = {
            c.code: f"{c.name}, {districts[c.district_code]}, {old_provinces[c.province_code]}"
            for c in src.legacy_communes
        }
        targets: dict[str, set[str]] = {}
        for old_code, new_code, _default in src.conversions:
            targets.setdefault(old_code, set()).add(new_code)
        old: dict[str, list[tuple[str, str]]] = {}
        for old_code, new_code, _default in src.conversions:
            if old_code in old_text:
                old.setdefault(new_code, []).append((old_code, old_text[old_code]))
        return cls(
            new_text=new_text,
            old={k: sorted(v) for k, v in old.items()},
            old_targets={k: frozenset(v) for k, v in targets.items()},
            by_province=by_province,
        )


# ------------------------------------------------------------------------------ text helpers

_MARKS = re.compile("[\u0300-\u036f]")
_TONES = "\u0300\u0301\u0303\u0309\u0323"
_NEW_TONE = re.compile(f"([oOuU])([{_TONES}])([aAeEyY])$")
_KEYBOARD = {
    "a": "sqz", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "g": "fh", "h": "gj", "i": "uo",
    "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip", "p": "o", "q": "wa", "r": "et",
    "s": "ad", "t": "ry", "u": "yi", "v": "cb", "x": "zc", "y": "tu",
}  # fmt: skip


def fold(text: str) -> str:
    """Lower case, no diacritics, ``đ`` as ``d``, single spaces (the contract's comparison
    without diacritics; written here independently of ``dancu.vn.names``)."""
    bare = _MARKS.sub("", unicodedata.normalize("NFD", text)).replace("đ", "d").replace("Đ", "D")
    return " ".join(bare.lower().split())


def strip_marks(text: str) -> str:
    """The name as typed on a keyboard without Vietnamese input: marks gone, ``đ`` as ``d``."""
    bare = _MARKS.sub("", unicodedata.normalize("NFD", text))
    return bare.replace("đ", "d").replace("Đ", "D")


def new_tone_style(name: str) -> str:
    """``Hòa`` -> ``Hoà``, ``Thủy`` -> ``Thuỷ``: the tone on the second vowel of an open
    oa/oe/uy (the "new" placement); other words unchanged."""
    words = []
    for word in name.split(" "):
        nfd = unicodedata.normalize("NFD", word)
        words.append(unicodedata.normalize("NFC", _NEW_TONE.sub(r"\1\3\2", nfd)))
    return " ".join(words)


def typo(rng: random.Random, name: str) -> str:
    """One typing error in one word: a neighbouring key, a letter dropped, doubled or two
    letters swapped. Always changes the name even without diacritics."""
    words = name.split(" ")
    for _ in range(20):
        i = rng.randrange(len(words))
        word = words[i]
        j = rng.randrange(len(word))
        kind = rng.random()
        base = fold(word[j]) or "a"
        if kind < 0.4:
            new = word[:j] + rng.choice(_KEYBOARD.get(base, "aeiou")) + word[j + 1 :]
        elif kind < 0.6 and len(word) > 2:
            new = word[:j] + word[j + 1 :]
        elif kind < 0.8:
            new = word[: j + 1] + word[j] + word[j + 1 :]
        elif j + 1 < len(word):
            new = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
        else:
            continue
        candidate = " ".join([*words[:i], new, *words[i + 1 :]])
        if fold(candidate) != fold(name) and new.strip():
            return candidate
    return name + "h"


# ------------------------------------------------------------------------------ rows


@dataclass(slots=True)
class Person:
    """What a row is about: a register person or an outsider, with what the register holds."""

    pid: str
    name: str
    born: str  # YYYY, YYYY-MM or YYYY-MM-DD
    sex: str
    status: str
    legacy: str | None
    commune: str | None
    street: str | None
    household: str | None
    in_register: bool


@dataclass(slots=True)
class Written:
    """One row as written, with what each value means (for the truth)."""

    pid_text: str
    pid: str | None  # the 12-digit number it stands for; None: missing or malformed
    pid_given: bool
    name_text: str
    name_base: str  # the name before cosmetic changes (case, marks, Unicode form, tone style)
    name_stripped: bool
    date_text: str
    date: tuple[int, int | None, int | None] | None  # None: not a date
    sex_text: str
    sex: str | None
    address_text: str
    address: frozenset[str] | None  # the 2025 communes it stands for; None: not given
    kinds: list[str] = field(default_factory=list)


def _partial(born: str) -> tuple[int, int | None, int | None]:
    parts = [int(p) for p in born.split("-")]
    return parts[0], parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None


def _dates_agree(
    a: tuple[int, int | None, int | None], b: tuple[int, int | None, int | None]
) -> bool:
    if a[0] != b[0]:
        return False
    if a[1] is None or b[1] is None:
        return True
    if a[1] != b[1]:
        return False
    return a[2] is None or b[2] is None or a[2] == b[2]


def _days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


class Corruptor:
    """Writes rows about people with the errors of :class:`Rates`."""

    def __init__(self, rng: random.Random, units: Units, rates: Rates) -> None:
        self.rng = rng
        self.units = units
        self.rates = rates

    def _hit(self, rate: float) -> bool:
        return self.rng.random() < rate

    def write(self, p: Person, other: Person | None) -> Written:
        """Row values for ``p``; ``other`` lends its ID when the row carries someone else's."""
        kinds: list[str] = []
        pid_text, pid, given = self._id(p, other, kinds)
        name_text, base, stripped = self._name(p.name, kinds)
        date_text, date = self._date(p.born, kinds)
        sex_text, sex = self._sex(p.sex, kinds)
        address_text, address = self._address(p, kinds)
        return Written(
            pid_text, pid, given, name_text, base, stripped, date_text, date, sex_text, sex,
            address_text, address, kinds,
        )  # fmt: skip

    def _id(
        self, p: Person, other: Person | None, kinds: list[str]
    ) -> tuple[str, str | None, bool]:
        r, rng = self.rates, self.rng
        pid = p.pid
        u = rng.random()
        edges = np.cumsum(
            [r.id_missing, r.id_typo, r.id_transposed, r.id_zero_lost, r.id_legacy, r.id_other]
        )
        if u < edges[0]:
            kinds.append("id_missing")
            return "", None, False
        if u < edges[1]:
            i = rng.randrange(12)
            digit = rng.choice([d for d in "0123456789" if d != pid[i]])
            pid = pid[:i] + digit + pid[i + 1 :]
            kinds.append("id_typo")
        elif u < edges[2]:
            spots = [i for i in range(11) if pid[i] != pid[i + 1]]
            i = rng.choice(spots)
            pid = pid[:i] + pid[i + 1] + pid[i] + pid[i + 2 :]
            kinds.append("id_transposed")
        elif u < edges[3] and pid.startswith("0"):
            kinds.append("id_zero_lost")
            return pid[1:], None, True
        elif u < edges[4] and p.legacy:
            kinds.append("id_legacy")
            return p.legacy, (p.legacy if len(p.legacy) == 12 else None), True
        elif u < edges[5] and other is not None:
            pid = other.pid
            kinds.append("id_other")
        if self._hit(r.id_spaced):
            sep = rng.choice(" .")
            kinds.append("id_spaced")
            return f"{pid[:3]}{sep}{pid[3:6]}{sep}{pid[6:]}", pid, True
        return pid, pid, True

    def _name(self, name: str, kinds: list[str]) -> tuple[str, str, bool]:
        r, rng = self.rates, self.rng
        words = name.split(" ")
        if self._hit(r.name_middle_dropped) and len(words) >= 3:
            words = [words[0], words[-1]]
            kinds.append("name_middle_dropped")
        if self._hit(r.name_reordered) and len(words) >= 2:
            if rng.random() < 0.5:
                words = [*words[1:], words[0]]  # Văn An Nguyễn
            else:
                words = [words[-1], *words[:-1]]  # An Nguyễn Văn
            kinds.append("name_reordered")
        base = " ".join(words)
        if self._hit(r.name_typo):
            base = typo(rng, base)
            kinds.append("name_typo")
        text = base
        stripped = False
        if self._hit(r.name_stripped):
            text, stripped = strip_marks(text), True
            kinds.append("name_stripped")
        else:
            if new_tone_style(text) != text and self._hit(r.name_new_tone):
                text = new_tone_style(text)
                kinds.append("name_new_tone")
            if self._hit(r.name_nfd):
                text = unicodedata.normalize("NFD", text)
                kinds.append("name_nfd")
        if self._hit(r.name_upper):
            text = text.upper()
            kinds.append("name_upper")
        return text, base, stripped

    def _date(
        self, born: str, kinds: list[str]
    ) -> tuple[str, tuple[int, int | None, int | None] | None]:
        r, rng = self.rates, self.rng
        y, m, d = _partial(born)
        if self._hit(r.date_unreadable):
            kinds.append("date_unreadable")
            return rng.choice(["không rõ", "00/00/0000", "?"]), None
        if self._hit(r.date_wrong_year):
            y += rng.choice([-2, -1, 1, 2])
            kinds.append("date_wrong_year")
        if m is not None and d is not None:
            if self._hit(r.date_swapped) and d <= 12 and d != m:
                m, d = d, m
                kinds.append("date_swapped")
            elif self._hit(r.date_wrong_day):
                d = rng.choice([x for x in range(1, _days(y, m) + 1) if x != d])
                kinds.append("date_wrong_day")
            if self._hit(r.date_partial_year):
                kinds.append("date_year_only")
                return str(y), (y, None, None)
            if self._hit(r.date_partial_month):
                kinds.append("date_month_only")
                return f"{m:02d}/{y}", (y, m, None)
            form = rng.random()
            if form < 0.62:
                text = f"{d:02d}/{m:02d}/{y}"
            elif form < 0.72:
                text = f"{d}/{m}/{y}"
            elif form < 0.82:
                text = f"{y}-{m:02d}-{d:02d}"
            elif form < 0.90:
                text = f"{d:02d}-{m:02d}-{y}"
            elif form < 0.95:
                text = f"{d:02d}{m:02d}{y}"
            else:
                text = f"{d:02d}.{m:02d}.{y}"
            return text, (y, m, d)
        if m is not None:
            return f"{m:02d}/{y}", (y, m, None)
        if rng.random() < 0.3:  # only the year is known; the file fills in 1 January
            kinds.append("date_filled_in")
            return f"01/01/{y}", (y, 1, 1)
        return str(y), (y, None, None)

    def _sex(self, sex: str, kinds: list[str]) -> tuple[str, str | None]:
        r, rng = self.rates, self.rng
        if self._hit(r.sex_missing):
            kinds.append("sex_missing")
            return "", None
        if self._hit(r.sex_wrong):
            sex = "F" if sex == "M" else "M"
            kinds.append("sex_wrong")
        form = rng.random()
        if form < 0.70:
            text = {"M": "Nam", "F": "Nữ"}[sex]
        elif form < 0.90:
            text = sex
        elif form < 0.95:
            text = {"M": "nam", "F": "Nu"}[sex]
        else:
            text = {"M": "male", "F": "female"}[sex]
        return text, sex

    def _address(self, p: Person, kinds: list[str]) -> tuple[str, frozenset[str] | None]:
        r, rng, units = self.rates, self.rng, self.units
        commune = p.commune
        if commune is None or self._hit(r.address_missing):
            kinds.append("address_missing")
            return "", None
        if self._hit(r.address_moved):
            province = next((k for k, v in units.by_province.items() if commune in v), None)
            pool = units.by_province.get(province or "", []) if rng.random() < 0.8 else []
            pool = [c for c in pool if c != commune] or sorted(units.new_text)
            commune = rng.choice(pool)
            kinds.append("address_moved")
        olds = units.old.get(commune)
        street = (p.street or "").replace(",", "")
        if olds and self._hit(r.address_old_units):
            old_code, text = rng.choice(olds)
            meaning = units.old_targets[old_code]
            kinds.append("address_old_units")
        else:
            text, meaning = units.new_text[commune], frozenset((commune,))
        return (f"{street}, {text}" if street else text), meaning


# ------------------------------------------------------------------------------ the file


def _people(table: pa.Table, in_register: bool) -> list[Person]:
    cols = {
        c: table.column(c).to_pylist()
        for c in (
            "personal_id", "full_name", "birth_date", "sex", "status", "legacy_id_number",
            "permanent_commune_code", "permanent_address", "household_id",
        )
    }  # fmt: skip
    return [Person(*values, in_register=in_register) for values in zip(*cols.values(), strict=True)]


@dataclass(slots=True)
class Sectoral:
    """A generated file and its truth (one entry per data row, in file order)."""

    path: Path
    rows: int
    truth: list[dict[str, Any]]
    kinds: dict[str, int]


class _Truth:
    """The contract's answer for a row, from what the row means (CONTRACTS §3)."""

    def __init__(self, register: Sequence[Person]) -> None:
        self.by_id = {p.pid: p for p in register}
        self.by_legacy = {p.legacy: p for p in register if p.legacy and len(p.legacy) == 12}

    def answer(self, w: Written) -> tuple[str, Person | None, list[str]]:
        if not w.pid_given:
            return "missing_id", None, []
        if w.pid is None:
            return "invalid_id", None, []
        holder = self.by_id.get(w.pid) or self.by_legacy.get(w.pid)
        if holder is None:
            return "not_found", None, []
        if holder.status == "deceased":
            return "deceased", holder, []
        bad = []
        name_ok = (
            fold(w.name_base) == fold(holder.name)
            if w.name_stripped
            else w.name_base.lower() == holder.name.lower()
        )
        if not name_ok:
            bad.append("full_name")
        if w.date_text and (w.date is None or not _dates_agree(w.date, _partial(holder.born))):
            bad.append("birth_date")
        if w.sex is not None and w.sex != holder.sex:
            bad.append("sex")
        if w.address is not None and holder.commune not in w.address:
            bad.append("address")
        return ("mismatch" if bad else "match"), holder, bad


def generate_file(
    register: pa.Table,
    outsiders: pa.Table,
    path: Path,
    rows: int,
    *,
    seed: int = 11,
    rates: Rates | None = None,
    units: Units | None = None,
) -> Sectoral:
    """Write a sectoral CSV of ``rows`` rows drawn from ``register`` and ``outsiders``, and
    return its truth. Deterministic for a given seed."""
    rates = rates or Rates()
    units = units or Units.load()
    rng = random.Random(seed)
    people = _people(register, True)
    strangers = _people(outsiders, False)
    truth_of = _Truth(people)
    alive = [i for i, p in enumerate(people) if p.status == "alive"]
    dead = [i for i, p in enumerate(people) if p.status == "deceased"]
    order = iter(rng.sample(alive, min(len(alive), rows)))
    corruptor = Corruptor(rng, units, rates)
    first_row: dict[str, int] = {}
    history: list[tuple[Person, Person | None, list[str], Written]] = []
    truth: list[dict[str, Any]] = []
    kinds: dict[str, int] = {}
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for n in range(1, rows + 1):
            if history and rng.random() < rates.repeat:
                p, other, line, w = history[rng.randrange(len(history))]
                if rng.random() < rates.repeat_exact:
                    line = [str(n), *line[1:]]
                    w = replace(w, kinds=["repeat_exact"])
                else:
                    w = corruptor.write(p, other)
                    w.kinds.append("repeat_fresh")
                    line = [str(n), w.pid_text, w.name_text, w.date_text, w.sex_text,
                            w.address_text, line[6]]  # fmt: skip
            else:
                u = rng.random()
                if u < rates.outsider and strangers:
                    p = strangers[rng.randrange(len(strangers))]
                elif u < rates.outsider + rates.deceased and dead:
                    p = people[dead[rng.randrange(len(dead))]]
                else:
                    p = people[next(order)]
                other = None
                if p.in_register or rng.random() < 0.5:
                    j = rng.randrange(len(people))
                    near = [q for q in people[max(j - 3, 0) : j + 3] if q.pid != p.pid]
                    # a household member's ID when one is at hand, else a stranger's
                    family = [q for q in near if q.household == p.household]
                    other = rng.choice(family or near) if near else None
                w = corruptor.write(p, other)
                if not p.in_register and "id_legacy" not in w.kinds and rng.random() < 0.4:
                    w.pid_text, w.pid, w.pid_given = "", None, False
                    w.kinds.append("id_missing")
                line = [str(n), w.pid_text, w.name_text, w.date_text, w.sex_text,
                        w.address_text, f"09{rng.randrange(10**8):08d}"]  # fmt: skip
                if len(history) < 5000:
                    history.append((p, other, line, w))
            writer.writerow(line)
            status, holder, bad = truth_of.answer(w)
            key = p.pid if p.in_register else f"out:{p.pid}"
            dup = first_row.setdefault(key, n)
            suggest = p.in_register and status in (
                "not_found",
                "invalid_id",
                "missing_id",
                "mismatch",
            )
            truth.append(
                {
                    "row": n,
                    "person": p.pid,
                    "in_register": p.in_register,
                    "status": status,
                    "personal_id": holder.pid if holder is not None else "",
                    "mismatched_fields": ";".join(bad),
                    "suggested_id": p.pid if suggest else "",
                    "duplicate_of": dup if dup != n else "",
                    "kinds": ";".join(w.kinds),
                }
            )
            for k in w.kinds:
                kinds[k] = kinds.get(k, 0) + 1
    return Sectoral(path, rows, truth, kinds)


def write_truth(sectoral: Sectoral, path: Path) -> Path:
    """The truth as Parquet (one row per data row)."""
    table = pa.Table.from_pylist(
        [{k: str(v) if k != "in_register" else v for k, v in t.items()} for t in sectoral.truth]
    )
    pq.write_table(table, path)
    return path


def iter_truth(path: Path) -> Iterator[dict[str, Any]]:
    yield from pq.read_table(path).to_pylist()


# ------------------------------------------------------------------------------ at scale


def _units_table(units: Units) -> pa.Table:
    codes = sorted(units.new_text)
    return pa.table(
        {
            "commune": codes,
            "new_text": [units.new_text[c] for c in codes],
            "old_texts": [[t for _, t in units.old.get(c, [])] for c in codes],
            "province": [next(p for p, cs in units.by_province.items() if c in cs) for c in codes],
        }
    )


def write_scale_file(
    register: Path,
    outsiders: Path,
    path: Path,
    rows: int,
    *,
    seed: int = 11,
    rates: Rates | None = None,
    units: Units | None = None,
    truth: Path | None = None,
) -> int:
    """A sectoral CSV of about ``rows`` rows with the same kinds of errors as
    :func:`generate_file`, written by DuckDB in bulk: for the benchmarks at a million rows and
    more, where a row-by-row generator would take longer than the run it measures.
    Deterministic for a given seed (hash-based draws). Differences from the row-by-row model:
    names are never NFD (lower case instead), nobody has moved, someone else's ID is a
    stranger's, exact copies carry the same draws. With ``truth``, also a Parquet file of the
    truth, one row per data row: ``row`` (the CSV's STT), ``personal_id`` (whom the row
    describes) and ``in_register`` (false for the people drawn from the outsiders). Returns the
    rows written."""
    r = rates or Rates()
    units = units or Units.load()
    # bounded: at ten million rows the default (80% of the machine's memory) took 17 GB
    con = duckdb.connect(
        config={"memory_limit": "4GB", "temp_directory": str(path.parent / ".scale_spill")}
    )
    con.register("units", _units_table(units))
    u = [f"((hash(personal_id, {seed}, {i}) % 1000003) / 1000003.0)" for i in range(12)]
    fresh = int(rows * r.repeat * (1 - r.repeat_exact))
    exact = int(rows * r.repeat * r.repeat_exact)
    outside = int(rows * r.outsider)
    dead = int(rows * r.deceased)
    main = rows - fresh - exact - outside - dead
    pid = "personal_id"
    edges = np.cumsum(
        [r.id_missing, r.id_typo, r.id_transposed, r.id_zero_lost, r.id_legacy, r.id_other]
    )
    letters = "aeiouynhtgcmd"
    name = "full_name"
    words = f"string_split({name}, ' ')"
    con.execute(
        f"""
        CREATE TABLE chosen AS
        WITH reg AS (SELECT * FROM read_parquet('{register}')),
        alive AS (SELECT *, lag(personal_id) OVER (ORDER BY personal_id) AS neighbour
                  FROM reg WHERE status = 'alive')
        SELECT *, true AS in_register FROM (
            SELECT * FROM alive ORDER BY hash(personal_id, {seed}) LIMIT {main})
        UNION ALL SELECT *, true FROM (
            SELECT *, personal_id AS neighbour FROM reg WHERE status = 'deceased'
            ORDER BY hash(personal_id, {seed}) LIMIT {dead})
        UNION ALL SELECT *, false FROM (
            SELECT *, NULL AS neighbour FROM read_parquet('{outsiders}')
            ORDER BY hash(personal_id, {seed}) LIMIT {outside})
        """
    )
    con.execute(
        f"""
        CREATE TABLE drawn AS
        SELECT *, 0 AS copy FROM chosen
        UNION ALL SELECT * FROM (SELECT *, 1 FROM chosen ORDER BY hash(personal_id, {seed}, 'f')
                                 LIMIT {fresh})
        """
    )
    born = "birth_date"
    digit = f"CAST((CAST(substr({pid}, 7, 1) AS INT) + 1 + h % 9) % 10 AS VARCHAR)"
    typo_id = f"substr({pid}, 1, 6) || {digit} || substr({pid}, 8)"
    swapped_id = (
        f"substr({pid}, 1, 8) || substr({pid}, 10, 1) || substr({pid}, 9, 1) || substr({pid}, 11)"
    )
    spaced_id = f"substr({pid}, 1, 3) || ' ' || substr({pid}, 4, 3) || ' ' || substr({pid}, 7)"
    con.execute(
        f"""
        CREATE TABLE written AS
        WITH d AS (
            SELECT drawn.*, units.new_text, units.old_texts,
                {", ".join(f"{x} AS u{i}" for i, x in enumerate(u))},
                hash(personal_id, {seed}, 'k') AS h
            FROM drawn LEFT JOIN units ON units.commune = drawn.permanent_commune_code
        ), v AS (
            SELECT *,
                -- with a repeat (copy 1), other draws: the same person written again
                CASE WHEN copy = 1 THEN (u0 + 0.5) % 1 ELSE u0 END AS w0,
                CASE WHEN copy = 1 THEN (u1 + 0.5) % 1 ELSE u1 END AS w1,
                CASE WHEN copy = 1 THEN (u2 + 0.5) % 1 ELSE u2 END AS w2
            FROM d
        )
        SELECT
            hash(personal_id, {seed}, copy, 'order') AS sort_key,
            CASE
                WHEN w0 < {edges[0]} THEN ''
                WHEN w0 < {edges[1]} THEN {typo_id}
                WHEN w0 < {edges[2]} THEN {swapped_id}
                WHEN w0 < {edges[3]} THEN ltrim({pid}, '0')
                WHEN w0 < {edges[4]} AND legacy_id_number IS NOT NULL THEN legacy_id_number
                WHEN w0 < {edges[5]} AND neighbour IS NOT NULL THEN neighbour
                WHEN u3 < {r.id_spaced} THEN {spaced_id}
                ELSE coalesce({pid}, '')
            END AS id_text,
            CASE
                WHEN w1 < {r.name_middle_dropped} AND len({words}) >= 3
                    THEN {words}[1] || ' ' || {words}[-1]
                WHEN w1 < {r.name_middle_dropped + r.name_reordered}
                    THEN array_to_string(list_concat({words}[2:], [{words}[1]]), ' ')
                WHEN w1 < {r.name_middle_dropped + r.name_reordered + r.name_typo}
                    THEN substr({name}, 1, CAST(h % length({name}) AS INT))
                        || substr('{letters}', CAST(1 + h % {len(letters)} AS INT), 1)
                        || substr({name}, CAST(h % length({name}) AS INT) + 2)
                ELSE {name}
            END AS base_name,
            u4 AS name_style, u5 AS date_style, u6 AS sex_style, u7 AS address_style,
            w2, u8, h,
            {born} AS born, sex, new_text, old_texts, permanent_address,
            personal_id AS true_id, in_register
        FROM v
        """
    )
    stripped = "replace(replace(strip_accents(base_name), 'đ', 'd'), 'Đ', 'D')"
    y, m, d = "substr(born, 1, 4)", "substr(born, 6, 2)", "substr(born, 9, 2)"
    swapped = r.date_unreadable + r.date_partial_year + r.date_swapped
    short_date = (
        f"CAST(CAST({d} AS INT) AS VARCHAR) || '/' || CAST(CAST({m} AS INT) AS VARCHAR) "
        f"|| '/' || {y}"
    )
    copied = f"(SELECT * FROM written ORDER BY sort_key LIMIT {exact})"
    con.execute(
        f"""
        COPY (
            SELECT row_number() OVER (ORDER BY sort_key) AS "STT", * EXCLUDE (sort_key) FROM (
            SELECT sort_key, id_text AS "Số CCCD",
                CASE
                    WHEN name_style < {r.name_stripped} THEN {stripped}
                    WHEN name_style < {r.name_stripped + r.name_upper} THEN upper(base_name)
                    WHEN name_style < {r.name_stripped + r.name_upper + r.name_nfd}
                        THEN lower(base_name)
                    ELSE base_name
                END AS "Họ và tên",
                CASE
                    WHEN length(born) = 4 THEN born
                    WHEN length(born) = 7 THEN substr(born, 6, 2) || '/' || {y}
                    WHEN date_style < {r.date_unreadable} THEN 'không rõ'
                    WHEN date_style < {r.date_unreadable + r.date_partial_year} THEN {y}
                    WHEN date_style < {swapped} THEN {m} || '/' || {d} || '/' || {y}
                    WHEN date_style < {swapped + r.date_wrong_year}
                        THEN {d} || '/' || {m} || '/' || CAST(CAST({y} AS INT) + 1 AS VARCHAR)
                    WHEN date_style < 0.65 THEN {d} || '/' || {m} || '/' || {y}
                    WHEN date_style < 0.75 THEN born
                    WHEN date_style < 0.85 THEN {d} || '-' || {m} || '-' || {y}
                    WHEN date_style < 0.92 THEN {d} || {m} || {y}
                    ELSE {short_date}
                END AS "Ngày sinh",
                CASE
                    WHEN sex_style < {r.sex_missing} THEN ''
                    WHEN sex_style < {r.sex_missing + r.sex_wrong}
                        THEN CASE sex WHEN 'M' THEN 'Nữ' ELSE 'Nam' END
                    WHEN sex_style < 0.75 THEN CASE sex WHEN 'M' THEN 'Nam' ELSE 'Nữ' END
                    ELSE sex
                END AS "Giới tính",
                CASE
                    WHEN new_text IS NULL OR address_style < {r.address_missing} THEN ''
                    ELSE coalesce(replace(permanent_address, ',', '') || ', ', '') || CASE
                        WHEN address_style < {r.address_missing + r.address_old_units}
                            AND len(old_texts) > 0
                            THEN old_texts[CAST(1 + h % len(old_texts) AS INT)]
                        ELSE new_text END
                END AS "Địa chỉ thường trú",
                '09' || lpad(CAST(h % 100000000 AS VARCHAR), 8, '0') AS "SĐT"
            FROM (SELECT * FROM written UNION ALL SELECT * REPLACE (hash(sort_key) AS sort_key)
                  FROM {copied})
            )
        ) TO '{path}' (HEADER, DELIMITER ',')
        """
    )
    if truth is not None:  # the same rows in the same order (STT), what each one is
        con.execute(
            f"""
            COPY (
                SELECT row_number() OVER (ORDER BY sort_key) AS row, true_id AS personal_id,
                    in_register
                FROM (SELECT sort_key, true_id, in_register FROM written
                      UNION ALL SELECT hash(sort_key), true_id, in_register FROM {copied})
            ) TO '{truth}' (FORMAT parquet)
            """
        )
    written = int(con.execute("SELECT count(*) FROM written").fetchall()[0][0]) + exact
    con.close()
    return written
