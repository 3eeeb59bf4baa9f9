"""The group commit writes its statements' parameters into the query as literals
(``verify.PgLiterals``): whatever the value, PostgreSQL must read back exactly the value sent,
and nothing in a value may end its literal."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from dancu.exchange.verify import PgLiterals, _pg_array

# PostgreSQL text holds any character but NUL (and no lone surrogate is valid UTF-8)
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"))


@pytest.fixture(scope="module")
def pg(engine: Engine) -> Any:
    if engine.dialect.name != "postgresql":
        pytest.skip("literals are written for PostgreSQL only")
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    with psycopg.connect(*args, **kwargs, autocommit=True) as conn:
        yield conn


def _read_back(conn: Any, sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


@settings(max_examples=300, deadline=None)
@given(value=_TEXT)
def test_any_text_reads_back_unchanged(pg: Any, value: str) -> None:
    literals = PgLiterals(pg.pgconn)
    assert _read_back(pg, literals.statement("SELECT %s::text", [value])) == value


@settings(max_examples=200, deadline=None)
@given(values=st.lists(_TEXT, max_size=8))
def test_any_list_of_text_reads_back_as_the_same_array(pg: Any, values: list[str]) -> None:
    literals = PgLiterals(pg.pgconn)
    assert _read_back(pg, literals.statement("SELECT %(v)s::text[]", {"v": values})) == values


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.integers(-(2**31), 2**31 - 1), max_size=8),
    n=st.integers(-(2**63), 2**63 - 1),
)
def test_numbers_and_arrays_of_numbers(pg: Any, values: list[int], n: int) -> None:
    literals = PgLiterals(pg.pgconn)
    sql = literals.statement("SELECT %s::int[], %s::bigint", [values, n])
    assert tuple(pg.execute(sql).fetchone()) == (values, n)


def test_a_quote_cannot_end_the_literal_early(pg: Any) -> None:
    literals = PgLiterals(pg.pgconn)
    attack = "x'; DROP TABLE access_log; --"
    sql = literals.statement("SELECT %s::text", [attack])
    assert _read_back(pg, sql) == attack
    assert pg.execute("SELECT to_regclass('access_log') IS NOT NULL").fetchone() == (True,)


def test_times_must_carry_their_zone_and_keep_it(pg: Any) -> None:
    literals = PgLiterals(pg.pgconn)
    moment = dt.datetime(2026, 11, 24, 7, 30, 1, 250, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    assert _read_back(pg, literals.statement("SELECT %s::timestamptz", [moment])) == moment
    with pytest.raises(ValueError, match="time-zone aware"):
        literals.literal(dt.datetime(2026, 11, 24, 7, 30))


def test_nul_and_unknown_values_are_refused(pg: Any) -> None:
    literals = PgLiterals(pg.pgconn)
    with pytest.raises(ValueError, match="NUL"):
        literals.literal("a\0b")
    with pytest.raises(TypeError, match="float"):
        literals.literal(1.5)
    assert literals.literal(None) == "NULL"
    assert literals.literal(True) == "true"


@given(numbers=st.lists(st.text(st.sampled_from("0123456789"), min_size=9, max_size=12)))
def test_the_register_reads_array_is_the_numbers(numbers: list[str]) -> None:
    """The register reads send their numbers as one array literal, unquoted (no database
    needed): it must hold exactly the numbers given."""
    literal = _pg_array(numbers)
    assert literal[0] + literal[-1] == "{}"
    assert (literal[1:-1].split(",") if numbers else []) == numbers


@pytest.mark.parametrize(
    "numbers",
    [
        ["079085000001", ""],
        ["079085000001,1"],
        ["0790850000}1"],
        ["٠٧٩٠٨٥٠٠٠٠٠١"],
        [" 079085000001"],
    ],
    ids=["empty", "comma", "brace", "arabic-indic-digits", "space"],
)
def test_the_register_reads_array_refuses_anything_but_ascii_digits(numbers: list[str]) -> None:
    with pytest.raises(ValueError, match="digits"):
        _pg_array(numbers)
