"""Organisations and clients: registration, secrets kept hashed, suspension, rotation, CLI."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dancu.cli import app as cli_app
from dancu.errors import DancuError
from dancu.exchange import clients
from dancu.exchange.exceptions import InvalidClientSettings, UnknownOrganization
from dancu.exchange.models import ApiClient


def test_a_client_gets_a_secret_that_is_stored_hashed(session: Session) -> None:
    creds = clients.add(
        session, organization="Bộ Thử Nghiệm", kind="ministry", scopes=["population.verify"],
        purposes=["  giải quyết   thủ tục "],
    )  # fmt: skip
    row = session.get(ApiClient, creds.client_id)
    assert row is not None and creds.client_secret is not None
    assert row.secret_hash == clients.hash_secret(creds.client_secret)
    assert creds.client_secret not in str(row.__dict__)
    assert clients.check_secret(row, creds.client_secret)
    assert not clients.check_secret(row, creds.client_secret + "x")
    assert row.purposes == ["giải quyết thủ tục"]
    assert row.auth_method == "client_secret_basic" and row.status == "active"


def test_bad_settings_are_refused_naming_each(session: Session) -> None:
    with pytest.raises(InvalidClientSettings) as caught:
        clients.add(
            session, organization="X", kind="bank", scopes=["population.everything"],
            purposes=[""], per_minute=0,
        )  # fmt: skip
    assert [p.field for p in caught.value.problems] == ["scope", "purpose", "quota"]


def test_an_unknown_organisation_needs_a_kind(session: Session) -> None:
    with pytest.raises(UnknownOrganization):
        clients.add(session, organization="Nobody", scopes=["population.verify"], purposes=["a"])


def test_suspend_reactivate_and_rotate(session: Session) -> None:
    creds = clients.add(
        session, organization="Nhà mạng Thử", kind="telecom", scopes=["population.verify"],
        purposes=["đăng ký thuê bao"],
    )  # fmt: skip
    seen: list[str] = []
    clients.on_change(seen.append)
    assert clients.suspend(session, creds.client_id).status == "suspended"
    assert clients.reactivate(session, creds.client_id).status == "active"
    rotated = clients.rotate_secret(session, creds.client_id)
    row = clients.get_or_raise(session, creds.client_id)
    assert not clients.check_secret(row, creds.client_secret or "")
    assert clients.check_secret(row, rotated.client_secret or "")
    assert seen == [creds.client_id] * 3


def test_a_key_set_with_a_private_key_is_refused(session: Session) -> None:
    private = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
               "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
               "d": "jpsQnnGQmL-YBIffH1136cLV3zQ1jqhhDOAxlaRa-Wk"}  # fmt: skip
    with pytest.raises(InvalidClientSettings):
        clients.add(
            session, organization="Bệnh viện Thử", kind="hospital",
            scopes=["population.verify"], purposes=["khám bệnh"], jwks={"keys": [private]},
        )  # fmt: skip


def test_the_cli_prints_the_credentials_as_json(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DANCU_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    runner = CliRunner()
    added = runner.invoke(
        cli_app,
        ["exchange", "client", "add", "--org", "Ngân hàng Thử", "--scope", "population.verify",
         "--purpose", "mở tài khoản", "--purpose", "cho vay"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    creds = json.loads(added.stdout)
    assert set(creds) == {"client_id", "client_secret"} and len(creds["client_secret"]) >= 40
    listed = runner.invoke(cli_app, ["exchange", "client", "list"])
    assert creds["client_secret"] not in listed.stdout
    assert json.loads(listed.stdout.splitlines()[0])["purposes"] == ["cho vay", "mở tài khoản"]
    suspended = runner.invoke(cli_app, ["exchange", "client", "suspend", creds["client_id"]])
    assert json.loads(suspended.stdout)["status"] == "suspended"
    bad = runner.invoke(cli_app, ["exchange", "client", "add", "--org", "X", "--scope", "nope",
                                  "--purpose", "p"])  # fmt: skip
    assert bad.exit_code == 1 and "scope" in bad.stderr
    assert runner.invoke(cli_app, ["exchange", "client", "suspend", "dc_nobody"]).exit_code == 1
    assert json.loads(runner.invoke(cli_app, ["exchange", "keys", "rotate"]).stdout)["kid"]


def test_errors_are_dancu_errors() -> None:
    assert issubclass(InvalidClientSettings, DancuError)
