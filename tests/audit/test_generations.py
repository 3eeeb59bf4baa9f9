"""Generations of the access log's batch items: on PostgreSQL a batch's items go to the
current generation, rotation closes it and opens the next, and readers and ``verify`` see
one log; on SQLite nothing rotates. Revision 0013 keeps the items already written."""

from __future__ import annotations

import itertools
import json
import threading
import time

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
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


def _postgres_only(bind: Connection | Engine, why: str = "generations are partitions") -> None:
    if bind.dialect.name != "postgresql":
        pytest.skip(f"{why} of PostgreSQL")


def test_a_generation_rotates_only_past_its_size_and_items_follow_the_current_one(
    session: Session,
) -> None:
    connection = session.connection()
    _postgres_only(connection)
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
    _postgres_only(fresh)
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
    upgrade(fresh)
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


def test_listing_the_generations_needs_revision_0013(
    fresh: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(fresh, "0012")
    monkeypatch.setenv("DANCU_DATABASE_URL", fresh.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        listed = CliRunner().invoke(app, ["audit", "generations"])
    finally:
        get_settings.cache_clear()
    assert listed.exit_code == 1
    assert "revision 0013" in listed.output
    with fresh.connect() as connection:  # it read only: nothing was upgraded
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            "0012"
        )


def test_a_rotation_that_waits_too_long_for_its_lock_changes_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A VACUUM or ANALYZE of the parent holds the lock ATTACH needs: while the rotation
    waits for it, the append lock stays free for the log's writers, and after
    ``lock_timeout`` it gives up (exit 1 from the command), changing nothing."""
    _postgres_only(engine)
    monkeypatch.setattr(generations, "LOCK_TIMEOUT", "1s")
    failures: list[BaseException] = []

    def rotation() -> None:
        try:
            with engine.begin() as connection:
                generations.rotate(connection, max_bytes=0)
        except OperationalError as exc:
            failures.append(exc)

    with engine.connect() as holder, engine.connect() as writer:
        before = generations.current(holder)
        holder.execute(text("LOCK TABLE ONLY access_log_item IN SHARE UPDATE EXCLUSIVE MODE"))
        try:
            waiting = threading.Thread(target=rotation)
            waiting.start()
            time.sleep(0.3)  # the rotation is waiting for the parent's lock now
            writer.execute(text("SET LOCAL lock_timeout = '200ms'"))
            writer.execute(  # an OperationalError here: the rotation held up the writers
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": audit.ADVISORY_LOCK_KEY}
            )
            writer.rollback()
            waiting.join(30)
            monkeypatch.setenv(
                "DANCU_DATABASE_URL", engine.url.render_as_string(hide_password=False)
            )
            get_settings.cache_clear()
            refused = CliRunner().invoke(app, ["audit", "rotate", "--max-mb", "0"])
        finally:
            holder.rollback()
            get_settings.cache_clear()
        assert len(failures) == 1, "the rotation gave up"
        assert refused.exit_code == 1
        assert "not granted" in refused.output
        assert generations.current(holder) == before


def test_a_rotator_set_to_zero_never_tries(engine: Engine) -> None:
    rotator = generations.Rotator(engine, max_bytes=0, every=0, clock=lambda: 1e12)
    assert rotator.poke() is None


def test_a_failed_rotation_is_logged_as_an_error_and_tried_again(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _postgres_only(engine, "the rotator is")

    def refused(connection: Connection, *, max_bytes: int) -> generations.Rotated:
        raise RuntimeError("must be owner of table access_log_item")

    monkeypatch.setattr(generations, "rotate", refused)
    ticks = itertools.count(0, 60).__next__
    rotator = generations.Rotator(engine, max_bytes=0, every=1, clock=ticks)
    with caplog.at_level("WARNING", logger="dancu.audit.generations"):
        first = rotator.poke()
        assert first is not None
        first.join(30)
        again = rotator.poke()
        assert again is not None, "the failed try released its turn"
        again.join(30)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2
    assert "must be owner" in errors[0].getMessage()


def test_a_partition_attached_by_hand_under_another_name_is_not_listed(
    session: Session,
) -> None:
    connection = session.connection()
    _postgres_only(connection)
    connection.execute(
        text(
            "CREATE TABLE access_log_item_archive PARTITION OF access_log_item "
            "FOR VALUES IN (100000)"
        )
    )
    listed = generations.generations(connection)
    assert listed and all(g.generation != 100000 for g in listed)


def test_revision_0013_keeps_the_privileges_granted_on_the_items(fresh: Engine) -> None:
    """A deployment that keeps the application's role to INSERT and SELECT keeps it so on the
    partitioned table, and that role may read the current generation."""
    _postgres_only(fresh, "privileges are")
    role = f"dancu_app_{fresh.url.database}".replace("-", "_")
    upgrade(fresh, "0012")
    with fresh.begin() as connection:
        connection.execute(text(f"DROP ROLE IF EXISTS {role}"))
        connection.execute(text(f"CREATE ROLE {role}"))
        connection.execute(text(f"GRANT SELECT, INSERT ON access_log_item TO {role}"))
    try:
        upgrade(fresh)
        with fresh.connect() as connection:

            def may(table: str, what: str) -> bool:
                return bool(
                    connection.execute(
                        text("SELECT has_table_privilege(:role, :table, :what)"),
                        {"role": role, "table": table, "what": what},
                    ).scalar()
                )

            assert may("access_log_item", "INSERT") and may("access_log_item", "SELECT")
            assert not may("access_log_item", "DELETE")
            assert may("access_log_generation", "SELECT")
            assert not may("access_log_generation", "UPDATE")
        config = alembic_config(fresh.url.render_as_string(hide_password=False))
        with fresh.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0012")
        with fresh.connect() as connection:
            assert may("access_log_item", "INSERT") and not may("access_log_item", "DELETE")
    finally:
        with fresh.begin() as connection:
            connection.execute(text("DROP OWNED BY " + role))
            connection.execute(text("DROP ROLE " + role))
