"""Which column of a sectoral file holds which field (CONTRACTS §3 "Columns are recognised").

A header is reduced to a *key*: folded like a name (lower case, no diacritics, ``đ`` as ``d``),
notes in brackets dropped (``Ngày sinh (dd/mm/yyyy)``), and everything but letters and digits
removed. ``Số CCCD``, ``SO CCCD``, ``so_cccd`` and ``Số  CCCD`` all give ``socccd``. Each field
has aliases in tiers: a header of a better tier wins (``Số CCCD`` over ``Số CMND``); two headers
of the same best tier are ambiguous and refused, naming both, so that nothing is guessed.

Files made by people put a title block above the header ("DANH SÁCH ..." and a blank line):
:func:`find_header_row` takes the row among the first :data:`HEADER_SEARCH_ROWS` that names the
most fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dancu.errors import Problem, ValidationFailed
from dancu.vn import names as vn_names

__all__ = [
    "ALIASES",
    "FIELDS",
    "HEADER_SEARCH_ROWS",
    "ColumnMap",
    "find_header_row",
    "header_key",
    "parse_mapping",
    "recognise",
]

FIELDS: tuple[str, ...] = ("personal_id", "full_name", "birth_date", "sex", "address")
"""The fields a sectoral file may give, in the order of CONTRACTS §3."""

HEADER_SEARCH_ROWS = 50
"""How many rows from the top may hold the header (title blocks are a few rows)."""

# Aliases as keys (see header_key), best tier first. Vietnamese with or without diacritics and
# English; CMND (the old card) only in a second tier, so "Số CCCD" wins when both are present.
ALIASES: dict[str, tuple[tuple[str, ...], ...]] = {
    "personal_id": (
        (
            "sodinhdanh", "sodinhdanhcanhan", "madinhdanh", "madinhdanhcanhan", "dinhdanh",
            "socccd", "cccd", "socancuoc", "cancuoc", "socancuoccongdan", "cancuoccongdan",
            "socccdcmnd", "cccdcmnd", "socmndcccd", "cmndcccd", "sodinhdanhcccd",
            "personalid", "personalidnumber", "nationalid", "nationalidnumber", "citizenid",
            "idnumber", "idno", "id",
        ),
        ("socmnd", "cmnd", "socmtnd", "cmtnd", "sogiayto", "sogttt", "sogiaytotuythan"),
    ),
    "full_name": (
        (
            "hoten", "hovaten", "hotendaydu", "hotencongdan", "hovatencongdan", "hotenkhaisinh",
            "fullname", "name", "tencongdan",
        ),
    ),
    "birth_date": (
        (
            "ngaysinh", "ngaythangnamsinh", "sinhngay", "ngaysinhdaydu", "birthdate",
            "dateofbirth", "dob", "birthday",
        ),
        ("namsinh", "yearofbirth", "birthyear"),
    ),
    "sex": (("gioitinh", "gioi", "phai", "sex", "gender"),),
    "address": (
        (
            "diachi", "diachithuongtru", "noithuongtru", "thuongtru", "noidangkythuongtru",
            "hokhauthuongtru", "diachihokhau", "address", "permanentaddress", "homeaddress",
        ),
        ("maxa", "maxaphuong", "communecode", "permanentcommunecode", "noio", "noicutru"),
    ),
}  # fmt: skip

_TIER: dict[str, tuple[str, int]] = {
    alias: (field, tier)
    for field, tiers in ALIASES.items()
    for tier, aliases in enumerate(tiers)
    for alias in aliases
}
_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def header_key(text: str) -> str:
    """The comparable form of a header: folded, bracketed notes dropped, letters and digits."""
    return _NOT_ALNUM.sub("", vn_names.fold(_BRACKETS.sub(" ", text)))


def field_of(header: str) -> tuple[str, int] | None:
    """(field, tier) a header is an alias of, or None."""
    return _TIER.get(header_key(header))


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Field -> (column index, header text) for the fields the file gives."""

    positions: dict[str, int]
    headers: dict[str, str]

    def fields(self) -> list[str]:
        """The mapped fields, in contract order."""
        return [f for f in FIELDS if f in self.positions]


def _cell(headers: Sequence[str], i: int) -> str:
    return headers[i].strip() if i < len(headers) else ""


def _explicit(headers: Sequence[str], columns: Mapping[str, str]) -> dict[str, int]:
    """Positions of ``--column field=HEADER`` mappings: exact text first, then by key."""
    problems: list[Problem] = []
    found: dict[str, int] = {}
    for field, wanted in columns.items():
        if field not in FIELDS:
            problems.append(
                Problem(None, field, f"unknown field; expected one of {', '.join(FIELDS)}")
            )
            continue
        exact = [i for i, h in enumerate(headers) if h.strip() == wanted.strip()]
        matches = exact or [
            i for i, h in enumerate(headers) if h.strip() and header_key(h) == header_key(wanted)
        ]
        if len(matches) == 1:
            found[field] = matches[0]
        elif not matches:
            problems.append(Problem(None, wanted, f"no such column for {field}"))
        else:
            problems.append(
                Problem(None, wanted, f"{len(matches)} columns have this header; rename one")
            )
    by_position: dict[int, list[str]] = {}
    for field, position in found.items():
        by_position.setdefault(position, []).append(field)
    for position, fields in by_position.items():
        if len(fields) > 1:
            problems.append(
                Problem(
                    None,
                    _cell(headers, position),
                    f"the column is mapped twice (to {' and '.join(fields)}); map it once",
                )
            )
    if problems:
        raise ValidationFailed("the --column mappings do not fit the file", problems)
    return found


def _automatic(headers: Sequence[str], taken: set[int], fields: set[str]) -> dict[str, list[int]]:
    """For each field not yet mapped, the columns of its best alias tier."""
    best: dict[str, tuple[int, list[int]]] = {}
    for i, header in enumerate(headers):
        if i in taken or not header.strip():
            continue
        hit = field_of(header)
        if hit is None or hit[0] not in fields:
            continue
        field, tier = hit
        current = best.get(field)
        if current is None or tier < current[0]:
            best[field] = (tier, [i])
        elif tier == current[0]:
            current[1].append(i)
    return {field: positions for field, (_tier, positions) in best.items()}


def _count_recognised(headers: Sequence[str], columns: Mapping[str, str]) -> int:
    keys = {header_key(h) for h in headers if h.strip()}
    wanted = {header_key(h) for h in columns.values()}
    auto = {hit[0] for h in headers if h.strip() and (hit := field_of(h)) is not None}
    return len(auto - set(columns)) + len(keys & wanted)


def find_header_row(rows: Sequence[Sequence[str]], columns: Mapping[str, str]) -> int | None:
    """Index of the row that names the most fields (the earliest on a tie), or None."""
    best: tuple[int, int] | None = None
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        count = _count_recognised(row, columns)
        if count and (best is None or count > best[0]):
            best = (count, index)
    return None if best is None else best[1]


def _listing(headers: Sequence[str]) -> str:
    shown = [h.strip() for h in headers if h.strip()]
    return ", ".join(repr(h) for h in shown) if shown else "(none)"


def recognise(
    headers: Sequence[str], columns: Mapping[str, str] | None = None, *, where: str
) -> ColumnMap:
    """Map the fields to columns of ``headers``; ValidationFailed names what is wrong.

    ``columns`` are explicit ``field -> header`` mappings; they win over recognition. The file
    must give ``personal_id``, or ``full_name`` and ``birth_date`` (CONTRACTS §3).
    """
    explicit = _explicit(headers, columns or {})
    rest = set(FIELDS) - set(explicit)
    automatic = _automatic(headers, set(explicit.values()), rest)
    problems = [
        Problem(
            None,
            field,
            f"several columns look like {field}: "
            f"{', '.join(repr(_cell(headers, i)) for i in positions)}; "
            f"choose one with --column {field}=HEADER",
        )
        for field, positions in automatic.items()
        if len(positions) > 1
    ]
    if problems:
        raise ValidationFailed(f"{where}: some columns are ambiguous", problems)
    positions = {**explicit, **{f: p[0] for f, p in automatic.items()}}
    ordered = {f: positions[f] for f in FIELDS if f in positions}
    mapped = ColumnMap(ordered, {f: _cell(headers, p) for f, p in ordered.items()})
    if "personal_id" not in ordered and not {"full_name", "birth_date"} <= set(ordered):
        recognised = ", ".join(f"{f} ({h!r})" for f, h in mapped.headers.items()) or "nothing"
        raise ValidationFailed(
            f"{where}: no column for the personal ID, nor for both full name and birth date. "
            f"Recognised: {recognised}. Headers found: {_listing(headers)}. "
            "Map columns with --column field=HEADER "
            f"(fields: {', '.join(FIELDS)}).",
            [Problem(None, None, f"headers found: {_listing(headers)}")],
        )
    return mapped


def parse_mapping(values: Sequence[str]) -> dict[str, str]:
    """``field=HEADER`` mappings (``--column``, or the API's ``column`` fields) as a dict;
    ValidationFailed naming the mapping for anything malformed or repeated."""
    mapping: dict[str, str] = {}
    by_header: dict[str, str] = {}
    problems: list[Problem] = []
    for value in values:
        name, sep, header = value.partition("=")
        name, header = name.strip(), header.strip()
        if not sep or not name or not header:
            problems.append(Problem(None, "column", f"{value!r}: expected field=HEADER"))
        elif name not in FIELDS:
            problems.append(
                Problem(
                    None,
                    "column",
                    f"unknown field {name!r}; expected one of {', '.join(FIELDS)}",
                )
            )
        elif name in mapping:
            problems.append(
                Problem(
                    None, "column", f"{name} is mapped twice ({mapping[name]!r} and {header!r})"
                )
            )
        elif header in by_header:
            problems.append(
                Problem(
                    None,
                    "column",
                    f"column {header!r} is mapped twice (to {by_header[header]} and {name})",
                )
            )
        else:
            mapping[name] = header
            by_header[header] = name
    if problems:
        raise ValidationFailed("; ".join(p.reason for p in problems), problems)
    return mapping
