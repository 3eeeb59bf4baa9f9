"""Generations of the access log's batch items: on PostgreSQL a batch's items go to the
current generation, rotation closes it and opens the next, and readers and ``verify`` see
one log; on SQLite nothing rotates. Revision 0013 keeps the items already written."""

from __future__ import annotations

import itertools
import json

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dancu.audit import bulk, generations, reading
from dancu.audit import service as audit
from dancu.cli import app
from dancu.config import get_settings
from dancu.migrations import alembic_config, upgrade
from tests.audit.factories import PERSON_A, PERSON_B

_NUMBERS = itertools.count(1)


def _batch(*people: str) -> bulk.BatchEntry:
    return bulk.BatchEntry(
        actor="dc_bank_gen",
        actor_kind="client",
        organization="Ngân hàng Thử Nghiệm",
        purpose="xác thực khách hàng",
        channel="verify",
        request_id=f"gen-{next(_NUMBERS)}",
        items=[bulk.BatchItem(n, p, ["status"], "match") for n, p in enumerate(people, 1)],
    )


def _where(connection: Connection, entry_id: int) -> set[str]:
    """The partitions holding an entry's items."""
    return set(
        connection.execute(
            text(
                "SELECT DISTINCT tableoid::regclass::text FROM access_log_item WHERE entry_id = :id"
            ),
            {"id": entry_id},
        ).scalars()
    )


def test_a_generation_rotates_only_past_its_size_and_items_follow_the_current_one(
    session: Session,
) -> None:
    connection = session.connection()
    if not generations.postgres(connection):
        pytest.skip("generations are partitions of PostgreSQL")
    before = generations.current(connection)
    first = bulk.append_batch(session, _batch(PERSON_A, PERSON_B))
    assert _where(connection, first.entry_id) == {generations.partition(before)}

    kept = generations.rotate(connection, max_bytes=1 << 40)
    assert kept.closed is None and kept.current == before and kept.bytes > 0
    rotated = generations.rotate(connection, max_bytes=0)
    assert (rotated.current, rotated.closed) == (before + 1, before)
    assert generations.current(connection) == before + 1

    second = bulk.append_batch(session, _batch(PERSON_A))
    assert _where(connection, second.entry_id) == {generations.partition(before + 1)}
    listed = generations.generations(connection)
    assert [g.generation for g in listed if g.current] == [before + 1]
    assert {before, before + 1} <= {g.generation for g in listed}

    # one log for its readers: the person's view spans both generations, the chain verifies
    seen = [view.id for view in reading.for_person(session, PERSON_A, limit=50).items]
    assert {first.entry_id, second.entry_id} <= set(seen)
    assert audit.verify(session).intact


def test_sqlite_keeps_every_item_in_generation_zero(session: Session) -> None:
    connection = session.connection()
    if generations.postgres(connection):
        pytest.skip("SQLite has no partitions")
    bulk.append_batch(session, _batch(PERSON_A))
    assert generations.rotate(connection, max_bytes=0) == generations.Rotated(0, None, 0)
    assert generations.generations(connection) == [generations.Generation(0, 0, True)]
    stored = connection.execute(text("SELECT DISTINCT generation FROM access_log_item"))
    assert stored.scalars().all() == [0]


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_a_generation_is_a_whole_number_from_zero(value: object) -> None:
    with pytest.raises(ValueError, match="whole number"):
        generations.partition(value)  # type: ignore[arg-type]


def test_a_negative_size_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="0 or more"):
        generations.rotate(session.connection(), max_bytes=-1)


def test_the_rotator_tries_once_an_interval_and_rotates_a_large_generation(
    fresh: Engine,
) -> None:
    if fresh.dialect.name != "postgresql":
        pytest.skip("generations are partitions of PostgreSQL")
    upgrade(fresh)
    now = [0.0]
    rotator = generations.Rotator(fresh, max_bytes=0, every=10, clock=lambda: now[0])
    assert rotator.poke() is None, "not yet due"
    now[0] = 10.0
    thread = rotator.poke()
    assert thread is not None
    thread.join(30)
    assert rotator.poke() is None, "the next try waits another interval"
    with fresh.connect() as connection:
        assert generations.current(connection) == 1
    # a batch written through its own connection now goes to generation 1
    with Session(fresh) as session:
        anchor = bulk.append_batch(session, _batch(PERSON_B))
        session.commit()
        assert _where(session.connection(), anchor.entry_id) == {"access_log_item_g1"}


def test_the_rotator_does_nothing_on_sqlite(fresh: Engine) -> None:
    if fresh.dialect.name == "postgresql":
        pytest.skip("SQLite's")
    upgrade(fresh)
    rotator = generations.Rotator(fresh, max_bytes=0, every=0.1, clock=lambda: 1e9)
    assert rotator.poke() is None


def test_revision_0013_keeps_the_items_written_before_and_downgrades(fresh: Engine) -> None:
    upgrade(fresh, "0012")
    with Session(fresh) as session:
        # written as revision 0012 wrote them: no generation column yet
        session.execute(
            text(
                "INSERT INTO access_log (id, occurred_at, actor, actor_kind, organization, "
                "personal_id, fields, purpose, channel, request_id, result, prev_hash, "
                "entry_hash, item_count) VALUES (1, :at, 'dc_bank_gen', 'client', NULL, NULL, "
                "'[\"status\"]', 'xác thực khách hàng', 'verify', NULL, NULL, :prev, :hash, 1)"
            ),
            {"at": "2026-11-25 09:00:00+00", "prev": audit.GENESIS_HASH, "hash": "0" * 64},
        )
        session.execute(
            text(
                "INSERT INTO access_log_item (entry_id, item, personal_id, fields, result) "
                "VALUES (1, 1, :person, 'status', 'match')"
            ),
            {"person": PERSON_A},
        )
        session.commit()
    upgrade(fresh)
    with fresh.connect() as connection:
        stored = connection.execute(
            text("SELECT entry_id, item, personal_id, generation FROM access_log_item")
        ).all()
        assert [tuple(row) for row in stored] == [(1, 1, PERSON_A, 0)]
        assert generations.current(connection) == 0
        if generations.postgres(connection):
            assert _where(connection, 1) == {"access_log_item_g0"}
            generations.rotate(connection, max_bytes=0)  # a generation 1 to fold back
            connection.commit()
    config = alembic_config(fresh.url.render_as_string(hide_password=False))
    with fresh.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0012")
    with fresh.connect() as connection:
        stored = connection.execute(
            text("SELECT entry_id, item, personal_id FROM access_log_item")
        ).all()
        assert [tuple(row) for row in stored] == [(1, 1, PERSON_A)]


def test_the_commands_list_and_rotate_generations(
    fresh: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DANCU_DATABASE_URL", fresh.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        listed = runner.invoke(app, ["audit", "generations"])
        assert listed.exit_code == 0, listed.output
        assert [json.loads(line)["current"] for line in listed.output.splitlines()] == [True]
        kept = runner.invoke(app, ["audit", "rotate"])  # an empty generation: below the size
        assert kept.exit_code == 0, kept.output
        assert json.loads(kept.output)["closed"] is None
        forced = runner.invoke(app, ["audit", "rotate", "--max-mb", "0"])
        assert forced.exit_code == 0, forced.output
        postgres = fresh.dialect.name == "postgresql"
        assert json.loads(forced.output)["current"] == (1 if postgres else 0)
        listed = runner.invoke(app, ["audit", "generations"])
        rows = [json.loads(line) for line in listed.output.splitlines()]
        assert [(row["generation"], row["current"]) for row in rows] == (
            [(0, False), (1, True)] if postgres else [(0, True)]
        )
        refused = runner.invoke(app, ["audit", "rotate", "--max-mb", "-1"])
        assert refused.exit_code == 2
    finally:
        get_settings.cache_clear()
