"""The first load of a nation (straight into an empty register) against the checked merge.

``importer.import_file`` into an empty register loads without a staging table and gives way to
the checked merge at the first problem; ``importer.load`` without ``reopen`` always takes the
checked merge. Both must leave the same register and report the same problems.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from dancu.errors import Problem, ValidationFailed
from dancu.registry import bulk, first_load, importer, pipeline
from dancu.registry.interchange import open_source
from dancu.registry.models import Citizen, Household, Residence
from tests.registry.factories import commune_codes, family, person, raw_batches, write_csv

_STAMPED = {"created_at", "updated_at", "import_batch_id"}


def _register(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Everything an import wrote, without the timestamps and batch numbers of the run."""
    citizen = [c for c in Citizen.__table__.c if c.name not in _STAMPED]
    return {
        "citizen": [
            tuple(r) for r in session.execute(select(*citizen).order_by(Citizen.personal_id))
        ],
        "household": [
            tuple(r)
            for r in session.execute(
                select(
                    Household.code, Household.head_id, Household.commune_code, Household.address
                ).order_by(Household.code)
            )
        ],
        "residence": [
            tuple(r)
            for r in session.execute(
                select(
                    Residence.personal_id,
                    Residence.kind,
                    Residence.commune_code,
                    Residence.address,
                    Residence.household_code,
                    Residence.valid_from,
                    Residence.valid_to,
                    Residence.ended_at.is_not(None),
                ).order_by(Residence.id)
            )
        ],
    }


def _merge_only(session: Session, path: Path, **kwargs: Any) -> importer.ImportReport:
    """The checked merge, always: ``load`` without ``reopen``."""
    malformed: list[Problem] = []
    _, digest, batches = open_source(
        path, chunk_rows=2, max_line_bytes=1 << 20, malformed=malformed
    )
    return importer.load(
        session,
        batches,
        source="import",
        name=path.name,
        actor="test",
        malformed=malformed,
        file_sha256=digest,
        **kwargs,
    )


def _in_savepoint(session: Session, run: Any) -> tuple[Any, dict[str, list[tuple[Any, ...]]]]:
    """Run, look at the register, and undo."""
    savepoint = session.begin_nested()
    try:
        result = run()
        return result, _register(session)
    finally:
        savepoint.rollback()


def _nation(session: Session) -> list[dict[str, str]]:
    first, second = commune_codes(session)
    return [
        *family(first),
        *family(second, household="HH-T2"),
        person(
            legacy_id_number="123456789",
            status="deceased",
            death_date="2020-05-05",
            birth_date="1931",
            permanent_commune_code=first,
            permanent_address='Số 7\\8, ngõ "Hoà Bình", tổ 3',
            place_of_origin="Hà Nội, Việt Nam",
            ethnicity="Kinh",
            religion="Không",
            nationality="Việt Nam",
            phone="0912000000",
        ),
        person(full_name="  ĐẶNG   thị  hoà ", sex="F", birth_date="1990-07"),
    ]


def _listed(exc: ValidationFailed) -> list[tuple[int | None, str | None, str]]:
    return [(p.row, p.field, p.reason) for p in exc.problems]


def _schema(session: Session) -> dict[str, Any]:
    """Indexes, keys and column defaults of the tables a large load sets aside, and the foreign
    keys of every table (some refer to the tables a load writes)."""
    found = inspect(session.connection())
    tables = ("citizen", "household", "residence")
    return {
        "indexes": {t: {i["name"] for i in found.get_indexes(t)} for t in tables},
        "primary keys": {t: found.get_pk_constraint(t) for t in tables},
        "foreign keys": {
            t: {(fk["name"], fk["referred_table"]) for fk in found.get_foreign_keys(t)}
            for t in found.get_table_names()
        },
        "defaults": {t: {c["name"]: c["default"] for c in found.get_columns(t)} for t in tables},
    }


@pytest.mark.parametrize("large", [False, True], ids=["indexes kept", "indexes set aside"])
def test_a_first_load_stores_what_the_checked_merge_stores(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large: bool
) -> None:
    if large:
        monkeypatch.setattr(importer, "BULK_FROM_ROWS", 1)
    path = write_csv(tmp_path / "nation.csv", _nation(session))
    schema = _schema(session)

    def first_load() -> tuple[importer.ImportReport, Any]:
        report = importer.import_file(session, path, actor="test", chunk_rows=2)
        return report, _schema(session)

    (first, schema_after), loaded = _in_savepoint(session, first_load)
    merged, expected = _in_savepoint(session, lambda: _merge_only(session, path))
    assert "write" in first.stages and "stage" in merged.stages, "each path was taken"
    assert schema_after == schema, "indexes, foreign keys and defaults are all back"
    assert loaded == expected
    assert len(loaded["citizen"]) == 8 and len(loaded["household"]) == 2
    summary = ("rows_read", "inserted", "unchanged", "rejected", "households")
    assert [getattr(first, f) for f in summary] == [getattr(merged, f) for f in summary]
    assert first.duplicate_candidates == merged.duplicate_candidates


@pytest.fixture
def bulk_nation(session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small nation's file, loaded as a large first load would be (PostgreSQL only)."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("COPY FREEZE is PostgreSQL's")
    monkeypatch.setattr(importer, "BULK_FROM_ROWS", 1)
    return write_csv(tmp_path / "nation.csv", _nation(session))


def test_a_large_first_load_on_postgresql_writes_its_rows_frozen(
    session: Session, bulk_nation: Path
) -> None:
    # COPY FREEZE into the tables truncated in the load's savepoint: every page all-visible
    # (the statistics the load gathers count them), none left for the next reader to rewrite.
    path = bulk_nation
    report = importer.import_file(session, path, actor="test", chunk_rows=2)
    assert "write" in report.stages and report.inserted == 8
    pages = session.execute(
        text(
            "SELECT relname, relpages, relallvisible FROM pg_class "
            "WHERE relname IN ('citizen', 'household', 'residence') "
            "AND relnamespace = current_schema()::regnamespace"
        )
    ).all()
    assert len(pages) == 3
    assert all(visible == total > 0 for _, total, visible in pages), pages
    # The residences' foreign key was validated with hash joins off; the setting is back.
    assert session.scalar(text("SELECT current_setting('enable_hashjoin')")) == "on"


@pytest.mark.parametrize("parallel", [False, True], ids=["in process", "in a second process"])
def test_a_large_first_load_numbers_its_residences_past_the_sequence(
    session: Session, bulk_nation: Path, parallel: bool
) -> None:
    # The reading process numbers the residences from the sequence's next value, and the
    # sequence is moved past them: the next residence gets a number of its own.
    sequence = "pg_get_serial_sequence('residence', 'id')"
    before = session.scalar(text(f"SELECT nextval({sequence})"))
    report = importer.import_file(
        session, bulk_nation, actor="test", chunk_rows=3, parallel=parallel
    )
    assert report.inserted == 8
    ids = list(session.scalars(text("SELECT id FROM residence ORDER BY id")))
    assert len(ids) == 7 and ids == list(range(ids[0], ids[0] + 7)) and ids[0] > before
    assert session.scalar(text(f"SELECT nextval({sequence})")) == ids[-1] + 1


def test_a_load_that_cannot_freeze_its_rows_gives_way_to_the_checked_merge(
    session: Session, bulk_nation: Path
) -> None:
    # An open cursor in the caller's transaction makes PostgreSQL refuse COPY FREEZE.
    path = bulk_nation
    expected = _in_savepoint(session, lambda: _merge_only(session, path))[1]
    dbapi: Any = session.connection().connection.driver_connection
    with dbapi.cursor(name="held_open") as held:
        held.execute("SELECT 1")
        report = importer.import_file(session, path, actor="test", chunk_rows=2)
        assert "stage" in report.stages, "the checked merge loaded the file"
        assert report.inserted == 8
        assert _register(session) == expected


def test_only_a_foreign_key_that_leads_an_index_is_validated_by_merging_indexes() -> None:
    keys = {
        key.name: bulk._leads_an_index(key)
        for table in (Citizen.__table__, Residence.__table__)
        for key in table.foreign_key_constraints
    }
    assert keys == {
        "fk_citizen_import_batch_id_import_batch": False,
        "fk_residence_personal_id_citizen": True,
    }


def test_the_stamps_of_a_first_load_read_back_like_the_merge(
    session: Session, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "one.csv", family(commune_codes(session)[0]))
    report = importer.import_file(session, path, actor="test")
    head = session.scalars(select(Household)).one()
    for citizen in session.scalars(select(Citizen)):
        assert citizen.import_batch_id == report.batch_id
        assert citizen.created_at == citizen.updated_at == head.created_at
        assert citizen.version == 1


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"father_id": "001060999999"}, "father_id", "nobody"),
        ({"household_id": "HH-X", "relationship_to_head": "child"}, "household_id", "no head"),
        ({"personal_id": "FIRST"}, "personal_id", "the same personal_id as row 1"),
        ({"legacy_id_number": "987654321"}, "legacy_id_number", "the same legacy number"),
        (
            {"household_id": "HH-F", "relationship_to_head": "head"},
            "relationship_to_head",
            "already has a head on row 1",
        ),
    ],
)
@pytest.mark.parametrize("surveyed", [True, False], ids=["from the stream", "in SQL"])
def test_a_problem_of_the_whole_file_gives_way_with_the_full_report_and_schema_intact(
    session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: dict[str, str],
    field: str,
    words: str,
    surveyed: bool,
) -> None:
    monkeypatch.setattr(importer, "BULK_FROM_ROWS", 1)
    if not surveyed:  # a load too large for the survey: the whole-file checks run in SQL
        monkeypatch.setattr(first_load, "SURVEY_MAX_ROWS", 1)
    schema = _schema(session)
    first = person(legacy_id_number="987654321", household_id="HH-F", relationship_to_head="head")
    bad = person(**change)
    if bad["personal_id"] == "FIRST":
        bad["personal_id"] = first["personal_id"]
    path = write_csv(tmp_path / "bad.csv", [first, person(), bad])
    with pytest.raises(ValidationFailed) as info, session.begin_nested():
        importer.import_file(session, path, actor="test")
    assert [(p.row, p.field) for p in info.value.problems] == [(3, field)]
    assert words in info.value.problems[0].reason
    assert session.scalar(select(Citizen.personal_id).limit(1)) is None
    assert _schema(session) == schema
    with pytest.raises(ValidationFailed) as merged, session.begin_nested():
        _merge_only(session, path)
    assert _listed(merged.value) == _listed(info.value)


@pytest.mark.parametrize(
    ("change", "found"),
    [
        ({}, []),
        ({"father_id": "001060999999"}, ["a father, mother or spouse who is nobody"]),
        ({"mother_id": "001160999999"}, ["a father, mother or spouse who is nobody"]),
        ({"spouse_id": "001160999999"}, ["a father, mother or spouse who is nobody"]),
        ({"household_id": "HH-X", "relationship_to_head": "child"}, ["a household with no head"]),
        ({"legacy_id_number": "987654321"}, ["a legacy number twice"]),
        # Twelve digits are another number than the nine they end with.
        ({"legacy_id_number": "000987654321"}, []),
        (
            {
                "legacy_id_number": "987654321",
                "household_id": "HH-Y",
                "relationship_to_head": "child",
            },
            ["a legacy number twice", "a household with no head"],
        ),
    ],
)
@pytest.mark.parametrize("chunk_rows", [1, 3], ids=["one row a batch", "one batch"])
def test_the_stream_survey_finds_what_the_sql_checks_find(
    session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: dict[str, str],
    found: list[str],
    chunk_rows: int,
) -> None:
    surveyed: list[list[str] | None] = []
    received = first_load.FileSurvey.received

    def spy(survey: first_load.FileSurvey, summary: first_load.Surveyed) -> None:
        surveyed.append(summary.found)
        received(survey, summary)

    monkeypatch.setattr(first_load.FileSurvey, "received", spy)
    first = person(legacy_id_number="987654321", household_id="HH-F", relationship_to_head="head")
    member = person(
        household_id="HH-F", relationship_to_head="child", father_id=first["personal_id"]
    )
    path = write_csv(tmp_path / "f.csv", [first, member, person(**change)])
    with session.begin_nested() as savepoint:
        if found:
            with pytest.raises(ValidationFailed):
                importer.import_file(session, path, actor="test", chunk_rows=chunk_rows)
        else:
            importer.import_file(session, path, actor="test", chunk_rows=chunk_rows)
            # The SQL checks agree on the loaded register.
            assert [w for w, sql in first_load._FILE_CHECKS if session.scalar(text(sql))] == []
        savepoint.rollback()
    assert surveyed[0] == found


@pytest.mark.parametrize("parallel", [False, True], ids=["in process", "in a second process"])
def test_the_survey_reaches_the_loader_from_the_checking_process(
    tmp_path: Path, parallel: bool
) -> None:
    first = person(household_id="HH-F", relationship_to_head="head")
    rows = [first, person(father_id="001060999999"), person(spouse_id=first["personal_id"])]
    malformed, batches = raw_batches(tmp_path / "f.csv", rows, chunk_rows=1)
    survey = first_load.FileSurvey()
    stream = pipeline.checked_batches(
        batches,
        communes=frozenset(),
        today=dt.date.today(),
        malformed=malformed,
        parallel=parallel,
        survey=survey,
    )
    assert sum(checked.rows_read for checked in stream) == 3
    assert survey.found == ["a father, mother or spouse who is nobody"]


def test_a_large_load_on_sqlite_gives_back_the_sort_settings(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("SQLite's sorter settings")
    monkeypatch.setattr(importer, "BULK_FROM_ROWS", 1)
    settings = ("PRAGMA threads", "PRAGMA cache_size")
    before = [session.scalar(text(pragma)) for pragma in settings]
    path = write_csv(tmp_path / "f.csv", family(commune_codes(session)[0]))
    assert importer.import_file(session, path, actor="test").inserted == 3
    assert [session.scalar(text(pragma)) for pragma in settings] == before


def test_the_survey_stops_past_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(first_load, "SURVEY_MAX_ROWS", 2)
    survey = first_load.FileSurvey()
    columns = ("father_id", "mother_id", "spouse_id", "legacy_id_number", "household_id")
    table = pa.table(
        {
            "personal_id": ["001085000001", "001085000002"],
            "relationship_to_head": pa.nulls(2, pa.string()),
            **{name: pa.nulls(2, pa.string()) for name in columns},
        }
    )
    survey.add(table)
    assert survey.finish().found == []
    survey.add(table)
    assert survey.finish() == first_load.Surveyed(None)
    assert survey.ids == []


@pytest.mark.parametrize(
    "chunk_rows", [1, 2, 6], ids=["one row a batch", "two rows a batch", "one batch"]
)
def test_an_id_twice_in_another_batch_gives_way_with_the_full_report(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int
) -> None:
    # The primary key refuses the second row wherever the batches fall (in the same INSERT
    # statement or a later one); the load must give way with the merge's full report.
    monkeypatch.setattr(importer, "BULK_FROM_ROWS", 1)
    schema = _schema(session)
    first = person()
    rows = [first, person(), dict(first), person(), person(), person()]
    path = write_csv(tmp_path / "twice.csv", rows)
    with pytest.raises(ValidationFailed) as info, session.begin_nested():
        importer.import_file(session, path, actor="test", chunk_rows=chunk_rows)
    assert [(p.row, p.field) for p in info.value.problems] == [(3, "personal_id")]
    assert "the same personal_id as row 1" in info.value.problems[0].reason
    assert session.scalar(select(Citizen.personal_id).limit(1)) is None
    assert _schema(session) == schema


def test_skip_invalid_on_a_clean_file_takes_the_first_load(
    session: Session, tmp_path: Path
) -> None:
    rejects = tmp_path / "rejects.csv"
    path = write_csv(tmp_path / "clean.csv", family(commune_codes(session)[0]))
    report = importer.import_file(
        session, path, actor="test", skip_invalid=True, rejects_path=rejects
    )
    assert (report.inserted, report.rejected, report.rejects_path) == (3, 0, None)
    assert "write" in report.stages
    assert not rejects.exists()


def test_a_second_import_into_a_filled_register_takes_the_checked_merge(
    session: Session, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "f.csv", family(commune_codes(session)[0]))
    importer.import_file(session, path, actor="test")
    again = importer.import_file(session, path, actor="test")
    assert "stage" in again.stages
    assert (again.inserted, again.unchanged) == (0, 3)
