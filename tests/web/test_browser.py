"""End to end in a real browser: Playwright driving Debian's Chromium against a real uvicorn
server (in a thread, on a free port) over a small synthetic register in a temporary SQLite
database. Sign in with TOTP, register a birth, move a household, review a duplicate, and an
out-of-scope official who is refused.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pyotp
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select
from sqlalchemy.orm import Session

from dancu import bootstrap
from dancu.app import create_app
from dancu.config import Settings
from dancu.db import make_engine
from dancu.registry.models import Citizen, DuplicateCandidate
from tests.officials.factories import PASSWORD, Enrolled, enrolled, settings_for
from tests.registry import world as worlds

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Site:
    base: str
    world: worlds.World
    officials: dict[str, Enrolled]
    settings: Settings
    database_url: str
    pair_id: int


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("e2e")
    database_url = f"sqlite:///{folder / 'e2e.db'}"
    port = _free_port()
    base = f"http://localhost:{port}"
    settings = settings_for(database_url, base_url=base)
    engine = make_engine(database_url)
    bootstrap.prepare(engine)
    with Session(engine, expire_on_commit=False) as session:
        world = worlds.build(session, folder)
        # One official per test: each signs in once (a TOTP code is never accepted twice).
        people = {
            "search": ("xa-a1-tra-cuu", "commune_officer", world.a1),
            "birth": ("tinh-pa-khai-sinh", "province_officer", world.pa),
            "move": ("tinh-pa-cu-tru", "province_officer", world.pa),
            "review": ("xa-a1-lam-sach", "commune_officer", world.a1),
            "quality": ("xa-a1-chat-luong", "commune_officer", world.a1),
            "far": ("xa-b1", "commune_officer", world.b1),
        }
        staff = {
            key: enrolled(session, settings, username=u, role=r, unit_code=unit)
            for key, (u, r, unit) in people.items()
        }
        mother, child = world.home[1]["personal_id"], world.home[2]["personal_id"]
        pair = DuplicateCandidate(
            personal_id_a=min(mother, child),
            personal_id_b=max(mother, child),
            reason="same name and birth date; same permanent commune",
            status="open",
            found_at=dt.datetime.now(dt.UTC),
        )
        session.add(pair)
        session.commit()
        pair_id = pair.id
    engine.dispose()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield Site(base, world, staff, settings, database_url, pair_id)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox"]
        )
        yield chromium
        chromium.close()


def _signed_in(browser: Browser, site: Site, who: Enrolled) -> Page:
    """A new browser context signed in as ``who`` through both factors, as an official would."""
    page = browser.new_context(locale="vi-VN").new_page()
    page.goto(f"{site.base}/registry")
    expect(page).to_have_url(f"{site.base}/login?next=%2Fregistry")
    page.get_by_label("Tên đăng nhập").fill(who.official.username)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Tiếp tục").click()
    page.get_by_label("Mã 6 chữ số").fill(pyotp.TOTP(who.secret).now())
    page.get_by_role("button", name="Xác nhận").click()
    expect(page).to_have_url(f"{site.base}/registry")
    return page


def _fresh(site: Site, personal_id: str) -> Citizen:
    engine = make_engine(site.database_url)
    try:
        with Session(engine) as session:
            found = session.get(Citizen, personal_id)
            assert found is not None
            return found
    finally:
        engine.dispose()


def test_sign_in_with_totp_and_find_a_citizen(browser: Browser, site: Site) -> None:
    page = _signed_in(browser, site, site.officials["search"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Tra cứu công dân")
    page.get_by_label("Số định danh, số CMND cũ").fill("tran van bo")
    page.get_by_label("Mục đích tra cứu").select_option("citizen_request")
    page.get_by_role("button", name="Tìm").click()
    page.get_by_role("link", name=site.world.home[0]["personal_id"]).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Trần Văn Bố")
    expect(page.get_by_role("heading", name="Hộ gia đình HH-W1")).to_be_visible()
    page.context.close()


def test_register_a_birth(browser: Browser, site: Site) -> None:
    page = _signed_in(browser, site, site.officials["birth"])
    page.get_by_role("link", name="Đăng ký khai sinh").click()
    page.get_by_label("Họ, chữ đệm và tên").fill("Trần Thị Út")
    page.get_by_label("Ngày sinh").fill("2026-01-15")
    page.get_by_label("Giới tính").select_option("F")
    page.get_by_label("Xã/phường thường trú").fill(site.world.a1)
    page.get_by_label("Mã hộ").fill("HH-W1")
    page.get_by_label("Cha", exact=True).fill(site.world.home[0]["personal_id"])
    page.get_by_label("Mẹ", exact=True).fill(site.world.home[1]["personal_id"])
    # A mistake first: an impossible date is shown beside its field, the name is kept.
    page.get_by_label("Ngày đăng ký").fill("2000-01-01")
    page.get_by_role("button", name="Lưu").click()
    expect(page.locator("#e-registered_on")).to_be_visible()
    expect(page.get_by_label("Họ, chữ đệm và tên")).to_have_value("Trần Thị Út")
    page.get_by_label("Ngày đăng ký").fill("")
    page.get_by_label("Giới tính").select_option("F")
    page.get_by_role("button", name="Lưu").click()
    expect(page.get_by_role("status")).to_contain_text("Đã đăng ký khai sinh")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Trần Thị Út")
    page.context.close()


def test_move_a_household(browser: Browser, site: Site) -> None:
    page = _signed_in(browser, site, site.officials["move"])
    neighbour = site.world.neighbour["personal_id"]
    page.goto(f"{site.base}/registry/citizens/{neighbour}?purpose=residence_procedure")
    page.get_by_role("link", name="Chuyển cả hộ").click()
    page.get_by_label("Xã/phường chuyển đến").fill(site.world.a1)
    page.get_by_label("Địa chỉ").fill("Số 12, phố Mới")
    page.get_by_label("Lý do").fill("chuyển nơi ở")
    page.get_by_role("button", name="Lưu").click()
    expect(page.get_by_role("status")).to_contain_text("Đã đăng ký thường trú nơi mới")
    moved = _fresh(site, neighbour)
    assert moved.permanent_commune_code == site.world.a1
    assert moved.permanent_address == "Số 12, phố Mới"
    page.context.close()


def test_review_a_duplicate(browser: Browser, site: Site) -> None:
    page = _signed_in(browser, site, site.officials["review"])
    page.get_by_role("link", name="Hồ sơ trùng").click()
    page.get_by_role("link", name=f"So sánh #{site.pair_id}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"So sánh #{site.pair_id}")
    expect(page.get_by_role("cell", name="Lê Thị Mẹ")).to_be_visible()
    dismiss = page.locator(f"form[action$='/{site.pair_id}/dismiss']")
    dismiss.get_by_role("button").click()  # no reason yet: refused beside the field
    expect(page.locator("#e-dismiss-reason")).to_be_visible()
    dismiss = page.locator(f"form[action$='/{site.pair_id}/dismiss']")
    dismiss.get_by_label("Lý do").fill("mẹ và con, hai người khác nhau")
    dismiss.get_by_role("button").click()
    expect(page.get_by_role("status")).to_contain_text("Đã xử lý hồ sơ nghi trùng")
    engine = make_engine(site.database_url)
    with Session(engine) as session:
        status = session.scalar(
            select(DuplicateCandidate.status).where(DuplicateCandidate.id == site.pair_id)
        )
    engine.dispose()
    assert status == "not_same"
    page.context.close()


def test_an_out_of_scope_official_is_refused(browser: Browser, site: Site) -> None:
    page = _signed_in(browser, site, site.officials["far"])
    father = site.world.home[0]
    response = page.goto(
        f"{site.base}/registry/citizens/{father['personal_id']}?purpose=citizen_request"
    )
    assert response is not None and response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("không thuộc đơn vị của bạn")
    expect(page.get_by_text(father["full_name"])).to_have_count(0)
    page.context.close()


def test_the_quality_chart_draws(browser: Browser, site: Site) -> None:
    page = _signed_in(browser, site, site.officials["quality"])
    page.get_by_role("link", name="Chất lượng dữ liệu").click()
    expect(page.locator("#quality-chart .main-svg").first).to_be_attached(timeout=15_000)
    page.context.close()


def test_language_toggle_and_phone_layout(browser: Browser, site: Site) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    page.goto(f"{site.base}/login")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Officials sign in")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, "the sign-in page scrolls sideways on a phone"
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert "Skip to main content" in focused
    context.close()
