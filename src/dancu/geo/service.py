"""Look up administrative units, convert legacy communes, and parse free-text addresses.

``GeoIndex`` is built once per process straight from the package data (``loader.read_source``),
not from the database: the address matcher needs the package's spelling variants and former
names, which the tables do not store, and parsing must work where no session is open (CLI,
workers, API). The loader fills the tables from the same source, so codes always agree.

The address matcher is our own, on the package's keys and aliases: offline by construction
(the package's converter geocodes split wards online), about 0.15-0.3 ms an address, and honest
about ambiguity (it reports every candidate instead of silently picking one or returning an
empty unit).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Literal, NamedTuple

from dancu.geo.loader import (
    SourceData,
    SourceUnit,
    UnitKind,
    province_populations,
    read_source,
)

Era = Literal["2025", "legacy"]
Status = Literal["parsed", "ambiguous", "province_only", "unparsed"]


class CommuneInfo(NamedTuple):
    """A 2025 commune, ward or special zone."""

    code: str
    province_code: str
    name: str
    kind: str
    area_km2: float | None


class ProvinceInfo(NamedTuple):
    """A 2025 province or centrally-run city, with its approximate population."""

    code: str
    name: str
    short_name: str
    population: int


class LegacyCommuneInfo(NamedTuple):
    """A commune of the units before 1 July 2025."""

    code: str
    district_code: str
    province_code: str
    name: str
    kind: str


class Conversion(NamedTuple):
    """One 2025 commune a legacy commune went to; a split one has several, one default."""

    code: str
    is_default: bool


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """What ``parse_address`` understood. ``status`` says how far it got; never silently empty.

    ``parsed``: one unit found (a split legacy ward is still ``parsed``: ``commune_code`` is its
    default and ``candidates`` every commune it went to). ``ambiguous``: the text fits several
    units; ``candidates`` lists them and ``commune_code`` is None. ``province_only``: only the
    province (or a legacy district) was recognised. ``unparsed``: nothing was.
    """

    status: Status
    commune_code: str | None = None
    default_code: str | None = None
    candidates: list[str] = field(default_factory=list)
    era: Era | None = None
    legacy_commune_code: str | None = None
    province_code: str | None = None
    street: str | None = None


# ---------------------------------------------------------------------------- normalisation

_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")
_TOKEN_RE = re.compile(r"[^\W_]+|[,;|\n]")
_GLUED_NUMBER_RE = re.compile(r"^(p|f|q|x|h)([0-9]+)$")
_CODE_RE = re.compile(r"\d{5}")
_MAX_WINDOW = 9
_STRIP = " \t\r\n,;|-–—./:"


def _fold(text: str) -> str:
    """Lower case without diacritics, đ as d: the form the package's keys use."""
    nfd = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in nfd if not unicodedata.combining(c)).replace("đ", "d")


def _accent(text: str) -> str:
    """Lower case with diacritics, the tone mark moved to the end of each syllable.

    ``Hoà`` and ``Hòa`` (old and new tone placement) give the same key; ``Giang`` and
    ``Giàng`` do not.
    """
    out = []
    for word in text.lower().split():
        nfd = unicodedata.normalize("NFD", word)
        base = "".join(c for c in nfd if c not in _TONES)
        out.append(unicodedata.normalize("NFC", base) + "".join(c for c in nfd if c in _TONES))
    return "".join(out)


class _Tok(NamedTuple):
    fold: str
    accent: str
    marked: bool
    start: int
    end: int
    seg: int


def _tokenize(text: str) -> list[_Tok]:
    """Words with their character spans and comma-separated segment numbers.

    Glued abbreviations with a number (``P1``, ``Q.10`` is already split) become two words,
    leading zeros are dropped, and a trailing country name or postal code is removed.
    """
    toks: list[_Tok] = []
    seg = 0
    for m in _TOKEN_RE.finditer(text):
        word = m.group()
        if word in ",;|\n":
            seg += 1
            continue
        fold = _fold(word)
        glued = _GLUED_NUMBER_RE.match(fold)
        if glued:
            n = len(glued.group(1))
            toks.append(_Tok(glued.group(1), glued.group(1), False, m.start(), m.start() + n, seg))
            number = glued.group(2).lstrip("0") or "0"
            toks.append(_Tok(number, number, False, m.start() + n, m.end(), seg))
            continue
        if fold.isascii() and fold.isdigit():
            fold = fold.lstrip("0") or "0"
        accent = _accent(word)
        toks.append(_Tok(fold, accent, accent != fold, m.start(), m.end(), seg))
    while toks:
        last = toks[-1].fold
        if last in ("vietnam", "vn") or (last.isdigit() and len(last) >= 5):
            toks.pop()
        elif last == "nam" and len(toks) > 1 and toks[-2].fold == "viet":
            del toks[-2:]
        else:
            break
    return toks


# ------------------------------------------------------------------------- type words

_K = UnitKind
# Type words (diacritics optional, longest first) and their abbreviations (never accented).
_TYPE_NAMES: tuple[tuple[str, UnitKind], ...] = (
    ("thành phố", _K.CITY), ("thị trấn", _K.TOWNSHIP), ("thị xã", _K.TOWN),
    ("đặc khu", _K.SPECIAL_ZONE), ("phường", _K.WARD), ("xã", _K.COMMUNE),
    ("quận", _K.URBAN_DISTRICT), ("huyện", _K.RURAL_DISTRICT), ("tỉnh", _K.PROVINCE),
    ("tp", _K.CITY), ("tt", _K.TOWNSHIP), ("tx", _K.TOWN), ("dk", _K.SPECIAL_ZONE),
    ("p", _K.WARD), ("f", _K.WARD), ("x", _K.COMMUNE), ("q", _K.URBAN_DISTRICT),
    ("h", _K.RURAL_DISTRICT), ("t", _K.PROVINCE),
)  # fmt: skip
# Each as (folded word, accented key or None) per word, with its kind.
_TYPE_WORDS = tuple(
    (tuple((_fold(w), _accent(w) if _fold(w) != w else None) for w in name.split()), kind)
    for name, kind in _TYPE_NAMES
)
# Type words glued to the name ("phuongbadinh", "tphcm").
_GLUED_TYPES = tuple(
    ("".join(f for f, _ in words), kind) for words, kind in _TYPE_WORDS if len(words[0][0]) > 1
)
# Prefixes the package's keywords carry when they name the type ("phuong1", "p1", "ward1").
_KEYWORD_PREFIXES = (*(p for p, _ in _GLUED_TYPES), "ward", "p", "f", "q", "h", "x", "t")
# A few names in common use that the package lacks.
_EXTRA_PROVINCE_NAMES = {"79": ("hcmc", "saigon"), "46": ("thuathienhue", "tthue")}

_PROVINCE_KINDS = frozenset({_K.PROVINCE, _K.CITY})
_DISTRICT_KINDS = frozenset({_K.URBAN_DISTRICT, _K.RURAL_DISTRICT, _K.TOWN, _K.CITY})
_WARD_KINDS = frozenset({_K.WARD, _K.COMMUNE, _K.TOWNSHIP, _K.SPECIAL_ZONE})


def _type_word_ok(tok: _Tok, fold: str, accent: str | None) -> bool:
    """``tok`` is this type word: equal folded, and equal accented if written with diacritics."""
    return tok.fold == fold and (not tok.marked or tok.accent == accent)


def _short_key(unit: SourceUnit) -> str:
    key = re.sub(r"[^0-9a-z]", "", _fold(unit.short_name))
    return key.lstrip("0") or key if key.isdigit() else key


def _after_type_word(toks: list[_Tok], lo: int, start: int, level: _Level) -> bool:
    """Whether the words just before ``start`` (not before ``lo``) name another level's type."""
    return any(
        kind not in level.kinds
        and start - len(words) >= lo
        and _is_type(toks[start - len(words) :], words)
        for words, kind in _TYPE_WORDS
    )


def _is_type(toks: list[_Tok], words: tuple[tuple[str, str | None], ...]) -> bool:
    """Whether ``toks`` begin with the type word ``words``."""
    return len(toks) >= len(words) and all(
        _type_word_ok(tok, fold, accent) for tok, (fold, accent) in zip(toks, words, strict=False)
    )


def _names(unit: SourceUnit) -> set[str]:
    """Untyped name keys of a unit: its short key, spelling variants and former names.

    The package's keywords come typed ("phuongtrucbach", "p1", "ward1") and untyped
    ("trucbach"); a keyword is typed when a type prefix followed by another keyword.
    """
    short = _short_key(unit)
    keywords = {re.sub(r"[^0-9a-z]", "", _fold(k)) for k in unit.keywords}
    stripped = {k.lstrip("0") or k for k in keywords | {short}}
    names = {short}
    for k in keywords:
        typed = any(
            k.startswith(p) and len(k) > len(p) and (k[len(p) :].lstrip("0") or "0") in stripped
            for p in _KEYWORD_PREFIXES
        )
        if k and not typed:
            names.add(k.lstrip("0") or k if k.isdigit() else k)
    return names


class _Rec(NamedTuple):
    code: str
    kind: UnitKind
    parent: str  # province code (legacy district, 2025 commune), district code (legacy commune)
    province: str
    accent: str
    era: Era


class _Level:
    """Name key -> units of one level, with the kinds a type word may name at that level."""

    def __init__(self, kinds: frozenset[UnitKind]) -> None:
        self.kinds = kinds
        self.names: dict[str, list[tuple[_Rec, bool]]] = {}

    def add(self, unit: SourceUnit, parent: str, era: Era, extra: tuple[str, ...] = ()) -> None:
        """Index ``unit`` under each of its names; its current short name is its primary one."""
        accent = _accent(unit.short_name)
        rec = _Rec(unit.code, unit.kind, parent, unit.province_code or unit.code, accent, era)
        short = _short_key(unit)
        for name in _names(unit) | set(extra):
            self.names.setdefault(name, []).append((rec, name == short))

    def take(
        self, key: str, kind: UnitKind | None, accent: str | None, accept: Accept, strict: bool
    ) -> list[_Found]:
        """Units named ``key`` that ``accept`` takes, of type ``kind`` when ``strict``."""
        if not key or (kind is None and key.isdigit()):
            return []  # a bare number ("1") is a house number, not "Phường 1"
        return [
            _Found(rec, kind is not None, accent, primary)
            for rec, primary in self.names.get(key, ())
            if accept(rec) and (kind is None or not strict or rec.kind == kind)
        ]


class _Found(NamedTuple):
    rec: _Rec
    typed: bool
    accent: str | None  # the written name's accent key, when the text carries diacritics
    primary: bool


class _Hit(NamedTuple):
    start: int
    recs: list[_Rec]
    typed: bool


Accept = Callable[[_Rec], bool]


def _within(codes: frozenset[str] | None, attr: str) -> Accept:
    if codes is None:
        return lambda _rec: True
    if attr == "parent":
        return lambda rec: rec.parent in codes
    return lambda rec: rec.province in codes


def _anything(_rec: _Rec) -> bool:
    return True


def _prefer(found: list[_Found]) -> list[_Found]:
    """Among several units, keep those named by their current name, then by exact diacritics."""
    if len({(f.rec.era, f.rec.code) for f in found}) > 1:
        found = [f for f in found if f.primary] or found
        found = [f for f in found if f.accent is not None and f.accent == f.rec.accent] or found
    return found


@dataclass(frozen=True, slots=True)
class _Text:
    """One address being parsed: its words, and whether it is written with diacritics."""

    raw: str
    toks: list[_Tok]
    marked: bool
    segmented: bool

    def starts_segment(self, start: int) -> bool:
        return start == 0 or self.toks[start - 1].seg != self.toks[start].seg

    def may_precede(self, hit: _Hit) -> bool:
        """Whether another unit may end right before ``hit``.

        In text with commas a unit ends at a comma, before a typed unit ("Phường X Quận Y") or
        before the province; so "Xã Tam Nông, Phú Thọ" is not read as "Xã ..., Huyện Tam Nông".
        """
        return not self.segmented or hit.typed or self.starts_segment(hit.start)

    def street(self, start: int) -> str | None:
        return self.raw[: self.toks[start].start].strip(_STRIP) or None


# ---------------------------------------------------------------------------- the index


class GeoIndex:
    """Both unit sets and the conversion table in memory, with the address matcher."""

    def __init__(self, src: SourceData, populations: dict[str, int] | None = None) -> None:
        pops = populations or {}
        self._provinces = {
            p.code: ProvinceInfo(p.code, p.name, p.short_name, pops.get(p.code, 0))
            for p in src.provinces
        }
        self._communes = {
            c.code: CommuneInfo(c.code, c.province_code, c.name, c.kind.value, c.area_km2)
            for c in src.communes
        }
        self._legacy = {
            c.code: LegacyCommuneInfo(
                c.code, c.district_code, c.province_code, c.name, c.kind.value
            )
            for c in src.legacy_communes
        }
        conv: dict[str, list[Conversion]] = {}
        for old, new, is_default in src.conversions:
            conv.setdefault(old, []).append(Conversion(new, is_default))
        self._conversions = {
            old: tuple(sorted(items, key=lambda c: (not c.is_default, c.code)))
            for old, items in conv.items()
        }
        self._district_communes = dict(src.district_conversions)
        self._district_province = {d.code: d.province_code for d in src.legacy_districts}
        self._merges = {new: frozenset(olds) for new, olds in src.province_merges.items()}
        self._new_province_of = {old: new for new, olds in self._merges.items() for old in olds}

        self._province_level = _Level(_PROVINCE_KINDS)
        for p in src.provinces:
            self._province_level.add(p, "", "2025", _EXTRA_PROVINCE_NAMES.get(p.code, ()))
        for p in src.legacy_provinces:
            self._province_level.add(p, "", "legacy", _EXTRA_PROVINCE_NAMES.get(p.code, ()))
        self._new_level = _Level(_WARD_KINDS)
        for c in src.communes:
            self._new_level.add(c, c.province_code, "2025")
        self._district_level = _Level(_DISTRICT_KINDS)
        for d in src.legacy_districts:
            self._district_level.add(d, d.province_code, "legacy")
        self._legacy_level = _Level(_WARD_KINDS - {_K.SPECIAL_ZONE})
        for c in src.legacy_communes:
            self._legacy_level.add(c, c.district_code, "legacy")

    # --- lookups

    def commune(self, code: str) -> CommuneInfo | None:
        """The 2025 commune with this code, or None."""
        return self._communes.get(code)

    def province(self, code: str) -> ProvinceInfo | None:
        """The 2025 province with this code, or None."""
        return self._provinces.get(code)

    def communes(self) -> Iterator[CommuneInfo]:
        """Every 2025 commune, by code."""
        return iter(self._communes.values())

    def provinces(self) -> Iterator[ProvinceInfo]:
        """Every 2025 province, by code."""
        return iter(self._provinces.values())

    def legacy_commune(self, code: str) -> LegacyCommuneInfo | None:
        """The legacy (pre-2025) commune with this code, or None."""
        return self._legacy.get(code)

    def is_commune_code(self, code: str) -> bool:
        """Whether ``code`` is a 2025 commune code."""
        return code in self._communes

    def convert_legacy(self, legacy_code: str) -> list[Conversion]:
        """The 2025 communes a legacy commune went to, the default first; [] if unknown."""
        return list(self._conversions.get(legacy_code, ()))

    # --- the matcher

    def _lookup(
        self, text: _Text, window: list[_Tok], level: _Level, accept: Accept, strict: bool
    ) -> tuple[list[_Rec], bool]:
        """Units of ``level`` whose name is ``window``, with or without a leading type word."""
        readings: list[tuple[UnitKind | None, list[_Tok]]] = []
        for words, kind in _TYPE_WORDS:
            if kind in level.kinds and len(window) > len(words) and _is_type(window, words):
                readings.append((kind, window[len(words) :]))
        readings.append((None, window))
        found: list[_Found] = []
        for reading, name_toks in readings:
            key = "".join(t.fold for t in name_toks)
            accent = "".join(t.accent for t in name_toks) if text.marked else None
            found += level.take(key, reading, accent, accept, strict)
        if not found and len(window) == 1:
            key = window[0].fold
            for prefix, glued in _GLUED_TYPES:
                if glued in level.kinds and key.startswith(prefix) and len(key) > len(prefix):
                    found += level.take(key[len(prefix) :], glued, None, accept, strict)
        found = _prefer(found)
        unique = list({(f.rec.era, f.rec.code): f.rec for f in found}.values())
        return unique, any(f.typed for f in found)

    def _hits(
        self, text: _Text, end: int, level: _Level, accept: Accept, strict: bool
    ) -> Iterator[_Hit]:
        """Units of ``level`` ending at token ``end`` within one segment, longest first."""
        if end <= 0:
            return
        toks = text.toks
        lo = end - 1
        while lo > 0 and toks[lo - 1].seg == toks[end - 1].seg:
            lo -= 1
        for start in range(max(lo, end - _MAX_WINDOW), end):
            if level is not self._province_level and _after_type_word(toks, lo, start, level):
                continue  # "Quận Hai Bà Trưng" is not the ward "Hai Bà Trưng" after a stray word
            recs, typed = self._lookup(text, toks[start:end], level, accept, strict)
            if recs:
                yield _Hit(start, recs, typed)

    def _match(
        self, text: _Text, end: int, level: _Level, accept: Accept, strict: bool
    ) -> _Hit | None:
        return next(self._hits(text, end, level, accept, strict), None)

    def parse(self, raw: str) -> ParsedAddress:
        """See ``parse_address``."""
        raw = unicodedata.normalize("NFC", raw) if isinstance(raw, str) else ""
        toks = _tokenize(raw)
        if not toks:
            return ParsedAddress(status="unparsed")
        text = _Text(raw, toks, any(t.marked for t in toks), toks[0].seg != toks[-1].seg)
        provinces = list(self._hits(text, len(toks), self._province_level, _anything, False))
        attempts: list[_Hit | None] = list(provinces)
        if all(not text.starts_segment(hit.start) for hit in provinces):
            attempts.append(None)  # the "province" may be the end of a ward's name
        for strict in (True, False):
            for prov in attempts:
                result = self._read_units(text, prov, strict)
                if result is not None:
                    return result
        prov = provinces[0] if provinces else None
        _, new, wide = self._scopes(prov)
        end = prov.start if prov is not None else len(toks)
        district = self._match(text, end, self._district_level, _within(wide, "parent"), False)
        if district is not None:
            codes = {self._new_province_of[self._district_province[r.code]] for r in district.recs}
            return self._province_only(text, district.start, "legacy", codes)
        if prov is not None and new:
            era: Era = "2025" if any(r.era == "2025" for r in prov.recs) else "legacy"
            return self._province_only(text, prov.start, era, set(new))
        return ParsedAddress(status="unparsed")

    def _scopes(
        self, prov: _Hit | None
    ) -> tuple[frozenset[str] | None, frozenset[str] | None, frozenset[str] | None]:
        """Legacy provinces named, 2025 provinces named (or merged into), legacy ones merged."""
        if prov is None:
            return None, None, None
        legacy = frozenset(r.code for r in prov.recs if r.era == "legacy")
        new = frozenset(r.code for r in prov.recs if r.era == "2025") or frozenset(
            self._new_province_of[c] for c in legacy
        )
        return legacy, new, legacy.union(*(self._merges[c] for c in new))

    def _read_units(self, text: _Text, prov: _Hit | None, strict: bool) -> ParsedAddress | None:
        """Read the units before province ``prov`` (None: no province, search nationwide).

        Order: legacy ward + district, 2025 commune, legacy ward alone. ``strict`` requires a
        written type word to be the unit's own and legacy units to lie in the province
        written; otherwise any type of the level and any legacy province merged into it do.
        """
        legacy_exact, new_scope, legacy_wide = self._scopes(prov)
        legacy_scope = legacy_exact if strict else legacy_wide
        end = prov.start if prov is not None else len(text.toks)
        district = self._match(
            text, end, self._district_level, _within(legacy_scope, "parent"), strict
        )
        if district is not None:
            codes = frozenset(r.code for r in district.recs)
            if text.may_precede(district):
                in_district = _within(codes, "parent")
                ward = self._match(text, district.start, self._legacy_level, in_district, strict)
                if ward is not None:
                    return self._legacy_result(text, ward)
            islands = sorted(
                {self._district_communes[c] for c in codes if c in self._district_communes}
            )
            if islands and (district.typed or text.starts_segment(district.start)):
                return self._result(text.street(district.start), "legacy", islands, None)
        ward = self._match(text, end, self._new_level, _within(new_scope, "province"), strict)
        if ward is not None:
            codes_new = sorted(r.code for r in ward.recs)
            return self._result(text.street(ward.start), "2025", codes_new, None)
        in_province = _within(legacy_scope, "province")
        ward = self._match(text, end, self._legacy_level, in_province, strict)
        if ward is not None:
            return self._legacy_result(text, ward)
        return None

    def _legacy_result(self, text: _Text, ward: _Hit) -> ParsedAddress:
        legacy_codes = sorted(r.code for r in ward.recs)
        conversions = [c for code in legacy_codes for c in self.convert_legacy(code)]
        defaults = [c.code for c in conversions if c.is_default]
        others = sorted({c.code for c in conversions} - set(defaults))
        candidates = list(dict.fromkeys(defaults)) + others
        single = legacy_codes[0] if len(legacy_codes) == 1 else None
        return self._result(text.street(ward.start), "legacy", candidates, single)

    def _result(
        self, street: str | None, era: Era, candidates: list[str], legacy_code: str | None
    ) -> ParsedAddress:
        """Parsed when one commune or one legacy commune (its default first), else ambiguous."""
        provinces = {self._communes[c].province_code for c in candidates}
        province = provinces.pop() if len(provinces) == 1 else None
        if len(candidates) == 1 or legacy_code is not None:
            default = candidates[0]
            return ParsedAddress(
                "parsed", default, default, candidates, era, legacy_code, province, street
            )
        return ParsedAddress("ambiguous", None, None, candidates, era, None, province, street)

    @staticmethod
    def _province_only(text: _Text, start: int, era: Era, provinces: set[str]) -> ParsedAddress:
        province = provinces.pop() if len(provinces) == 1 else None
        return ParsedAddress(
            "province_only", era=era, province_code=province, street=text.street(start)
        )


# ------------------------------------------------------------------------- module API


@cache
def get_index() -> GeoIndex:
    """The process-wide index (built on first use in about 0.6 s; read-only afterwards)."""
    src = read_source()
    return GeoIndex(src, province_populations(src))


def parse_address(text: str) -> ParsedAddress:
    """Parse a free-text address written in 2025 or in legacy units; never touches the network.

    Accepts full or abbreviated type words (P., Q., TP., X., H., TX., TT.), with or without
    diacritics, comma-separated or not. The text before the units is returned as ``street``.
    Legacy units are converted: a split ward gives every commune it went to, the default first.
    """
    return get_index().parse(text)


def communes_agree(given: str, register_commune_code: str | None) -> bool:
    """CONTRACTS §3 address agreement: the same 2025 commune after converting legacy units.

    ``given`` is a 5-digit code (a 2025 code if it is one, else a legacy code, converted) or a
    free-text address. Any candidate of a split ward or of an ambiguous text agrees; a text
    naming only a province, or one that cannot be parsed, does not. The street is ignored.
    """
    if not register_commune_code or not isinstance(given, str):
        return False
    index = get_index()
    value = given.strip()
    if _CODE_RE.fullmatch(value):
        if index.is_commune_code(value):
            return value == register_commune_code
        return any(c.code == register_commune_code for c in index.convert_legacy(value))
    parsed = index.parse(value)
    return parsed.status in ("parsed", "ambiguous") and register_commune_code in parsed.candidates
