"""Revision 0007 (batch entries) keeps every existing entry and its hash, and a downgrade
that would break the chain is refused."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dancu.audit import bulk
from dancu.audit import service as audit
from dancu.migrations import alembic_config, upgrade
from tests.audit.factories import PERSON_A, T0

OLD_ENTRY = (
    "INSERT INTO access_log (id, occurred_at, actor, actor_kind, organization, personal_id, "
    "fields, purpose, channel, request_id, result, prev_hash, entry_hash) VALUES (:id, "
    ":occurred_at, :actor, :actor_kind, :organization, :personal_id, :fields, :purpose, "
    ":channel, :request_id, :result, :prev_hash, :entry_hash)"
)


def _old_entries(engine: Engine, count: int) -> None:
    """Entries as revision 0006 wrote them (one person each, no items)."""
    prev = audit.GENESIS_HASH
    with engine.begin() as connection:
        for n in range(1, count + 1):
            values = {
                "id": n,
                "occurred_at": T0 + dt.timedelta(minutes=n),
                "actor": "can-bo-01",
                "actor_kind": "official",
                "organization": "Công an phường Thử Nghiệm",
                "personal_id": PERSON_A,
                "fields": ["full_name"],
                "purpose": "giải quyết thủ tục",
                "channel": "web",
                "request_id": f"r-{n}",
                "result": None,
                "prev_hash": prev,
            }
            prev = audit.compute_hash(values)
            stored = {
                **values,
                "fields": '["full_name"]',
                "occurred_at": values["occurred_at"]
                if engine.dialect.name == "postgresql"
                else values["occurred_at"].replace(tzinfo=None),
                "entry_hash": prev,
            }
            connection.execute(text(OLD_ENTRY), stored)


def test_existing_entries_keep_their_hashes_and_a_batch_follows(fresh: Engine) -> None:
    upgrade(fresh, "0006")
    _old_entries(fresh, 3)
    upgrade(fresh)
    with Session(fresh) as session:
        assert audit.verify(session).entries == 3
        bulk.append_batch(
            session,
            bulk.BatchEntry(
                actor="dc_bank",
                actor_kind="client",
                organization="Ngân hàng Thử Nghiệm",
                purpose="xác thực khách hàng",
                channel="verify",
                items=[bulk.BatchItem(1, PERSON_A, ["status"], "match")],
            ),
        )
        session.commit()
        result = audit.verify(session)
    assert result.intact and result.entries == 4
    config = alembic_config(fresh.url.render_as_string(hide_password=False))
    with fresh.begin() as connection:
        config.attributes["connection"] = connection
        with pytest.raises(RuntimeError, match="would break the hash chain"):
            command.downgrade(config, "0006")
    with Session(fresh) as session:
        assert audit.verify(session).entries == 4, "the refused downgrade changed nothing"


def test_a_log_without_batches_downgrades_and_still_verifies(fresh: Engine) -> None:
    upgrade(fresh, "0006")
    _old_entries(fresh, 2)
    upgrade(fresh)
    config = alembic_config(fresh.url.render_as_string(hide_password=False))
    with fresh.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0006")
    with fresh.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM access_log")).scalar() == 2
        columns = [c["name"] for c in inspect(connection).get_columns("access_log")]
        assert "item_count" not in columns
        assert not inspect(connection).has_table("access_log_item")


def _person_index(engine: Engine) -> dict[str, list[str | None]]:
    return {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("access_log_item")}


@pytest.mark.parametrize("built_by_hand", ["no", "hash", "btree", "invalid"])
def test_revision_0008_finds_items_by_person_through_one_column(
    fresh: Engine, built_by_hand: str
) -> None:
    """Revision 0008 replaces the (personal_id, entry_id) B-tree with an index on personal_id
    (hash on PostgreSQL), also when an operator built one beforehand (and builds it again
    when that one is not a hash index or was left invalid), and back on downgrade."""
    postgres = fresh.dialect.name == "postgresql"
    if built_by_hand == "invalid" and not postgres:
        pytest.skip("an interrupted CREATE INDEX CONCURRENTLY is PostgreSQL's")
    upgrade(fresh, "0007")
    assert _person_index(fresh) == {
        "ix_access_log_item_personal_id_entry_id": ["personal_id", "entry_id"]
    }
    if built_by_hand != "no":  # as an operator would, CONCURRENTLY, before upgrading a big log
        using = "USING hash " if postgres and built_by_hand != "btree" else ""
        create = f"CREATE INDEX ix_access_log_item_personal_id ON access_log_item {using}"
        with fresh.begin() as connection:
            connection.execute(text(create + "(personal_id)"))
            if built_by_hand == "invalid":  # as an interrupted concurrent build leaves it
                connection.execute(
                    text(
                        "UPDATE pg_index SET indisvalid = false "
                        "WHERE indexrelid = 'ix_access_log_item_personal_id'::regclass"
                    )
                )
    upgrade(fresh)
    assert _person_index(fresh) == {"ix_access_log_item_personal_id": ["personal_id"]}
    if postgres:
        with fresh.connect() as connection:
            method, valid = connection.execute(
                text(
                    "SELECT am.amname, i.indisvalid FROM pg_class c "
                    "JOIN pg_am am ON am.oid = c.relam JOIN pg_index i ON i.indexrelid = c.oid "
                    "WHERE c.relname = 'ix_access_log_item_personal_id'"
                )
            ).one()
        assert (method, valid) == ("hash", True)
    with Session(fresh) as session:
        bulk.append_batch(
            session,
            bulk.BatchEntry(actor="dc_bank", actor_kind="client", organization="Ngân hàng Thử",
                            purpose="xác thực khách hàng", channel="verify",
                            items=[bulk.BatchItem(1, PERSON_A, ["status"], "match")]),
        )  # fmt: skip
        session.commit()
        assert [v.item for v in audit.for_person(session, PERSON_A).items] == [1]
    config = alembic_config(fresh.url.render_as_string(hide_password=False))
    with fresh.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0007")
    assert _person_index(fresh) == {
        "ix_access_log_item_personal_id_entry_id": ["personal_id", "entry_id"]
    }
