"""Normalise a batch of given values with the register's own rules, once per distinct value.

The register's normalisers (``dancu.vn``, ``dancu.geo``) are Python functions; sectoral files
repeat values (the same birth dates, sexes, communes, often names), so each batch is dictionary
encoded by Arrow and each *distinct* value goes through the normaliser once, with the vn and
geo caches across batches. ID numbers, nearly all distinct, take a vectorised path: values that
are already 12 digits are kept as they are, and only the others go through
:func:`dancu.vn.personal_id.normalise_id`.

Addresses are parsed on their *key* (:func:`address_key`): the last three comma-separated parts
(the units: ward, district and province in the old units, commune and province in the new ones,
are always among them), less leading numbered street parts and a village before a commune.
The street, which the contract does not compare, would make nearly every address distinct; on
the benchmark's 46,572 distinct addresses the key gives the same candidates as the whole text
for every one, from 10,331 distinct keys. New keys are parsed by worker processes while the
rest of the run goes on (:class:`AddressResolver`); the exact track joins the candidates back
by key.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from multiprocessing.pool import AsyncResult, Pool
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dancu.geo import service as geo
from dancu.reconcile.reader import RawBatch
from dancu.registry.interchange import per_distinct
from dancu.vn import dates as vn_dates
from dancu.vn import names as vn_names
from dancu.vn import personal_id as vn_id
from dancu.vn import sex as vn_sex

__all__ = [
    "ADDRESS_SCHEMA",
    "GIVEN_SCHEMA",
    "AddressResolver",
    "Memo",
    "Normaliser",
    "address_candidates",
    "address_key",
    "address_tail",
    "address_tails",
    "name_forms",
    "normalise_batch",
]

GIVEN_SCHEMA = pa.schema(
    [
        ("input_row", pa.int64()),
        ("id_given", pa.bool_()),
        ("id_norm", pa.string()),
        ("id_ok", pa.bool_()),
        ("name_given", pa.bool_()),
        ("name_canon", pa.string()),
        ("name_fold", pa.string()),
        ("name_marked", pa.bool_()),
        ("date_given", pa.bool_()),
        ("date_ok", pa.bool_()),
        ("birth_year", pa.int16()),
        ("birth_month", pa.int8()),
        ("birth_day", pa.int8()),
        ("sex_given", pa.bool_()),
        ("sex", pa.string()),
        ("address_given", pa.bool_()),
        ("address_key", pa.string()),
    ]
)
"""One row per data row: what was given, normalised, and whether it could be read."""

_TWELVE_DIGITS = "^[0-9]{12}$"
_CODE = re.compile(r"\d{5}")


def _name(raw: str) -> tuple[str | None, str | None, bool]:
    canon, key = vn_names.canonical_and_fold(raw)
    if not canon:
        return None, None, False
    return canon, key, vn_names.has_diacritics(canon)


def _date(raw: str) -> tuple[bool, int | None, int | None, int | None]:
    try:
        value = vn_dates.parse_lenient_date(raw)
    except ValueError:
        return False, None, None, None
    return True, value.year, value.month, value.day


def _sex(raw: str) -> tuple[str | None]:
    try:
        return (vn_sex.parse_sex(raw),)
    except ValueError:
        return (None,)


@lru_cache(maxsize=1 << 16)
def address_candidates(text: str) -> tuple[str, ...]:
    """The 2025 communes an address (or a 5-digit commune code, old or new) may stand for.

    The same rule as :func:`dancu.geo.service.communes_agree`, as a set: a register commune
    agrees exactly when it is among these; ``()`` when the text names no commune.
    """
    value = text.strip()
    index = geo.get_index()
    if _CODE.fullmatch(value):
        if index.is_commune_code(value):
            return (value,)
        return tuple(c.code for c in index.convert_legacy(value))
    parsed = geo.parse_address(value)
    if parsed.status in ("parsed", "ambiguous"):
        return tuple(parsed.candidates)
    return ()


# Street-level words, folded: số, ngõ, ngách, hẻm, kiệt, đường, phố, tổ, thôn, ấp, xóm, bản,
# buôn, khu, khóm, khối, lô, nhà, tòa, căn, km.
_STREET_WORDS = frozenset(
    (
        "so ngo ngach hem kiet duong pho to thon ap xom ban buon khu khom khoi lo nha toa can km"
    ).split()
)


_DIGIT = re.compile(r"\d")


def _is_street(part: str) -> bool:
    """A numbered street-level part (``Số 5``, ``ngõ 12``, ``Thôn 3``, ``12 Lê Lợi``)."""
    if _DIGIT.search(part) is None:
        return False
    if part[0].isdigit():
        return True
    return vn_names.fold(part.split(None, 1)[0]).strip(".") in _STREET_WORDS


_COMMUNE_TYPED = re.compile(r"(phuong|xa|thi tran|dac khu)\b|(p|x|tt|dk)[.\s]")
"""A part typed as a commune-level unit (folded): phường, xã, thị trấn, đặc khu, P., X., TT."""


@lru_cache(maxsize=1 << 16)
def address_key(text: str) -> str:
    """The part of an address that names units: its last three comma-separated parts, less
    leading numbered street parts (house numbers, lanes) and a village or street before a
    commune-level part; the contract does not compare them, and they would make nearly every
    address distinct."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    tail = parts[-3:]
    while len(tail) > 1 and _is_street(tail[0]):
        tail = tail[1:]
    if len(tail) == 3 and _COMMUNE_TYPED.match(vn_names.fold(tail[1])):
        if not _COMMUNE_TYPED.match(vn_names.fold(tail[0])):
            tail = tail[1:]  # a village or street before a commune (Ấp Nam, Xã X, Tỉnh Y)
    key = ", ".join(tail)
    if _CODE.fullmatch(key) and key != text.strip():
        return ", ".join(parts[-3:])  # "Số 5, 00001" is text, not a commune code
    return key


def address_tail(text: str) -> str:
    """The last three comma-separated parts of an address, stripped: all
    :func:`address_key` looks at (``address_key(address_tail(t)) == address_key(t)``), and far
    fewer distinct values than whole addresses when the house number comes first."""
    parts = [p for p in (x.strip() for x in text.split(",")) if p]
    return ", ".join(parts[-3:])


def address_tails(values: pa.Array) -> pa.Array:
    """:func:`address_tail` of every value at once, in Arrow (nulls stay null): split on
    commas, trim (Arrow's whitespace is Python's), drop empty parts, keep the last three."""
    lists = pc.split_pattern(values, ",")
    flat = pc.utf8_trim_whitespace(lists.flatten())
    parents = pc.list_parent_indices(lists).to_numpy()
    kept = np.flatnonzero(pc.greater(pc.utf8_length(flat), 0).to_numpy(zero_copy_only=False))
    owner = parents[kept]
    counts = np.bincount(owner, minlength=len(values))
    first = np.cumsum(counts) - counts
    from_end = counts[owner] - (np.arange(len(kept)) - first[owner])
    chosen = kept[from_end <= 3]
    sizes = np.bincount(parents[chosen], minlength=len(values))
    offsets = pa.array(np.concatenate([[0], np.cumsum(sizes)]), pa.int32())
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, flat.take(chosen)), ", ")
    return pc.if_else(pc.is_valid(values), joined, pa.nulls(len(values), pa.string()))


class Memo:
    """Results of a per-value function across batches: each distinct value of the whole file
    goes through Python once (dates, sexes, many names and address units repeat from batch to
    batch). Cleared when it grows past ``limit`` entries, so memory stays bounded."""

    def __init__(self, fn: Callable[[str], tuple[Any, ...]], limit: int = 1 << 21) -> None:
        self._fn = fn
        self._seen: dict[str, tuple[Any, ...]] = {}
        self._limit = limit

    def __call__(self, values: pa.Array, types: Sequence[pa.DataType]) -> list[pa.Array]:
        """``fn`` of each value, as one array per result (nulls stay null)."""
        encoded = pc.dictionary_encode(values)
        distinct = encoded.dictionary.to_pylist()
        seen = self._seen
        if len(seen) + len(distinct) > self._limit:
            seen.clear()
        fn = self._fn
        results = []
        for value in distinct:
            found = seen.get(value)
            if found is None:
                found = seen[value] = fn(value)
            results.append(found)
        columns = [pa.array([r[i] for r in results], t) for i, t in enumerate(types)]
        return [c.take(encoded.indices) for c in columns]


def _parse_many(keys: list[str]) -> list[tuple[str, ...]]:
    """Candidates of each address key (run in a worker process)."""
    return [address_candidates(k) for k in keys]


def name_forms(names: list[str]) -> list[tuple[str | None, str | None, bool]]:
    """Canonical form, fold and whether marked, of each name (also run in worker processes):
    the register's own functions (``vn.names.canonical_and_fold``)."""
    return [_name(n) for n in names]


ADDRESS_SCHEMA = pa.schema(
    [("address_key", pa.string()), ("address_candidates", pa.list_(pa.string()))]
)
"""Address key -> the 2025 communes it may stand for (``[]``: it names no commune)."""


_SEEN_LIMIT = 1 << 21


class AddressResolver:
    """Address keys -> candidate communes, each distinct key parsed once per run.

    Parsing an address costs about 0.2 ms; a file of 60,000 rows holds over 10,000 distinct
    unit texts. With ``parallel``, new keys are handed to a pool of worker processes, forked
    after the index is built (they share it; parsing is pure Python, one core each), while this
    process goes on reading, normalising and fetching the register; :meth:`collect` waits for
    them. Without it, keys are parsed as they come. Use as a context manager: the pool ends
    with it.
    """

    def __init__(self, *, parallel: bool) -> None:
        geo.get_index()  # built once, before any fork, so that workers share it
        self._seen: set[str] = set()
        self._done: list[tuple[str, tuple[str, ...]]] = []
        self._pending: list[tuple[list[list[str]], AsyncResult[list[list[tuple[str, ...]]]]]] = []
        self._workers = os.cpu_count() or 1
        self._pool: Pool | None = None
        if parallel and self._workers > 1 and "fork" in mp.get_all_start_methods():
            self._pool = mp.get_context("fork").Pool(self._workers)

    def __enter__(self) -> AddressResolver:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def submit(self, keys: Sequence[str]) -> None:
        """Start resolving the address keys not seen before."""
        if len(self._seen) > _SEEN_LIMIT:
            self._seen.clear()  # a key resolved twice costs a little time, not memory
        new = [k for k in keys if k not in self._seen]
        self._seen.update(new)
        if not new:
            return
        if self._pool is None:
            self._done.extend((k, address_candidates(k)) for k in new)
            return
        size = -(-len(new) // (self._workers * 4))
        chunks = [new[i : i + size] for i in range(0, len(new), size)]
        self._pending.append((chunks, self._pool.map_async(_parse_many, chunks)))

    def collect(self) -> pa.Table:
        """Every key submitted so far with its candidates (:data:`ADDRESS_SCHEMA`)."""
        for chunks, result in self._pending:
            for chunk, found in zip(chunks, result.get(), strict=True):
                self._done.extend(zip(chunk, found, strict=True))
        self._pending = []
        keys = [k for k, _ in self._done]
        candidates = [list(c) for _, c in self._done]
        return pa.Table.from_arrays(
            [pa.array(keys, pa.string()), pa.array(candidates, pa.list_(pa.string()))],
            schema=ADDRESS_SCHEMA,
        )


def _ids(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(normalised ID, is 12 digits): already-clean values kept, others via normalise_id."""
    clean = pc.fill_null(pc.match_substring_regex(values, _TWELVE_DIGITS), True)
    if pc.all(clean).as_py():
        normalised = values
    else:
        messy = pc.invert(clean)
        (fixed,) = per_distinct(
            values.filter(messy), lambda v: (vn_id.normalise_id(v),), [pa.string()]
        )
        normalised = pc.replace_with_mask(values, messy, fixed)
    ok = pc.fill_null(pc.match_substring_regex(normalised, _TWELVE_DIGITS), False)
    return normalised, ok


class Normaliser:
    """Normalises the batches of one run, remembering across batches what each distinct value
    gave (see :class:`Memo`); addresses go through :func:`address_tail` first, then the memo
    of :func:`address_key` by tail."""

    def __init__(self, resolver: AddressResolver | None = None) -> None:
        self.resolver = resolver
        self.dates = Memo(_date)
        self.sexes = Memo(_sex)
        self._keys = Memo(lambda tail: (address_key(tail),))

    def _names(self, values: pa.Array) -> list[pa.Array]:
        """Canonical form, fold, marked: once per distinct name of the batch (names rarely
        repeat from batch to batch: no memory across batches)."""
        encoded = pc.dictionary_encode(values)
        distinct = encoded.dictionary.to_pylist()
        found = name_forms(distinct)
        kinds = (pa.string(), pa.string(), pa.bool_())
        columns = [pa.array([r[i] for r in found], t) for i, t in enumerate(kinds)]
        return [c.take(encoded.indices) for c in columns]

    def _address_keys(self, values: pa.Array) -> pa.Array:
        """The address keys (by tail, remembered across batches), handed to the resolver."""
        encoded = pc.dictionary_encode(values)
        (keys,) = self._keys(address_tails(encoded.dictionary), [pa.string()])
        if self.resolver is not None:
            self.resolver.submit([str(k) for k in pc.unique(keys).drop_null().to_pylist()])
        return keys.take(encoded.indices)

    def batch(self, raw: RawBatch) -> pa.RecordBatch:
        """The batch in :data:`GIVEN_SCHEMA`; fields the file does not give are not given.

        Addresses become keys; the resolver is handed the keys to resolve (see
        :class:`AddressResolver`), which the exact track joins back by key.
        """
        n = len(raw)
        no = pa.array([False] * n, pa.bool_())

        def nulls(kind: pa.DataType) -> pa.Array:
            return pa.nulls(n, kind)

        out: dict[str, pa.Array] = {"input_row": raw.rows}
        ids = raw.values.get("personal_id")
        if ids is None:
            out.update(id_given=no, id_norm=nulls(pa.string()), id_ok=no)
        else:
            normalised, ok = _ids(ids)
            out.update(id_given=pc.is_valid(ids), id_norm=normalised, id_ok=ok)
        names = raw.values.get("full_name")
        if names is None:
            out.update(
                name_given=no, name_canon=nulls(pa.string()), name_fold=nulls(pa.string()),
                name_marked=no,
            )  # fmt: skip
        else:
            canon, key, marked = self._names(names)
            out.update(
                name_given=pc.is_valid(canon), name_canon=canon, name_fold=key,
                name_marked=pc.fill_null(marked, False),
            )  # fmt: skip
        dates = raw.values.get("birth_date")
        if dates is None:
            out.update(
                date_given=no, date_ok=no, birth_year=nulls(pa.int16()),
                birth_month=nulls(pa.int8()), birth_day=nulls(pa.int8()),
            )  # fmt: skip
        else:
            ok, year, month, day = self.dates(dates, [pa.bool_(), pa.int16(), pa.int8(), pa.int8()])
            out.update(
                date_given=pc.is_valid(dates), date_ok=pc.fill_null(ok, False), birth_year=year,
                birth_month=month, birth_day=day,
            )  # fmt: skip
        sexes = raw.values.get("sex")
        if sexes is None:
            out.update(sex_given=no, sex=nulls(pa.string()))
        else:
            (sex,) = self.sexes(sexes, [pa.string()])
            out.update(sex_given=pc.is_valid(sexes), sex=sex)
        addresses = raw.values.get("address")
        if addresses is None:
            out.update(address_given=no, address_key=nulls(pa.string()))
        else:
            out.update(
                address_given=pc.is_valid(addresses), address_key=self._address_keys(addresses)
            )
        return pa.RecordBatch.from_arrays([out[f.name] for f in GIVEN_SCHEMA], schema=GIVEN_SCHEMA)


def normalise_batch(raw: RawBatch, resolver: AddressResolver | None = None) -> pa.RecordBatch:
    """One batch on its own (:meth:`Normaliser.batch` without memory of other batches)."""
    return Normaliser(resolver).batch(raw)
