"""Accessibility, checked by machine in a real browser: axe-core (vendored under
tests/web/vendor/, MPL-2.0) runs in Debian's Chromium on every page an official uses,
signed out and signed in, in its plain state and showing a refused form's errors; no
serious or critical violation may remain, nor any serious or critical check axe could not
decide by itself. And the keyboard alone signs in and reaches the
search form.

axe is loaded from the page's own origin (a Playwright route), so the pages keep their
Content-Security-Policy while they are checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect
from sqlalchemy.orm import Session

from dancu.db import make_engine
from dancu.officials import service as officials
from tests.officials.factories import PASSWORD, Enrolled, enrolled
from tests.web.test_browser import CHROMIUM, Site, _signed_in, browser, site  # noqa: F401

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
]

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
AXE_PATH = "/__test__/axe.min.js"  # answered by the test's route, never by the app
BLOCKING = ("serious", "critical")
# The violations of one page, and what axe could not decide ("incomplete") except the colour
# contrast of text it cannot measure (symbols, digits, text drawn over the chart's layers):
# rule, impact, help, and where.
_RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations", "incomplete"]});
  const unmeasurable = /could not be determined|only non-text|too short to determine/;
  const undecided = result.incomplete.map(v => ({...v, nodes: v.nodes.filter(
    n => !(v.id === "color-contrast" && unmeasurable.test(n.failureSummary || "")))}));
  return result.violations.concat(undecided).filter(v => v.nodes.length).map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " :: " + n.failureSummary),
  }));
}"""


def _serve_axe(context: BrowserContext, on: Site) -> None:
    def fulfil(route: Route) -> None:
        route.fulfill(status=200, content_type="text/javascript", body=AXE)

    context.route(f"{on.base}{AXE_PATH}", fulfil)


def _audit(page: Page, on: Site, where: str, found: dict[str, list[str]]) -> None:
    """Run axe on the page as it stands; note its serious and critical violations."""
    page.add_script_tag(url=f"{on.base}{AXE_PATH}")
    violations = page.evaluate(_RUN_AXE)
    blocking = [
        f"{v['id']} ({v['impact']}): {v['help']}\n      " + "\n      ".join(v["nodes"])
        for v in violations
        if v["impact"] in BLOCKING
    ]
    if blocking:
        found[where] = blocking


def _visit(page: Page, on: Site, path: str, found: dict[str, list[str]]) -> None:
    response = page.goto(f"{on.base}{path}")
    assert response is not None and response.status < 500, path
    _audit(page, on, path, found)


def _report(found: dict[str, list[str]]) -> str:
    return "\n".join(f"{where}:\n    " + "\n    ".join(items) for where, items in found.items())


def _official(on: Site, username: str, role: str, unit: str) -> Enrolled:
    engine = make_engine(on.database_url)
    try:
        with Session(engine, expire_on_commit=False) as db:
            who = enrolled(db, on.settings, username=username, role=role, unit_code=unit)
            db.commit()
            return who
    finally:
        engine.dispose()


def _enrolment_token(on: Site) -> str:
    engine = make_engine(on.database_url)
    try:
        with Session(engine) as db:
            enrolment = officials.create(
                db,
                on.settings,
                username="xa-a1-moi",
                role="commune_officer",
                unit_code=on.world.a1,
                actor="test",
            )
            db.commit()
            return enrolment.token
    finally:
        engine.dispose()


@pytest.fixture
def context(browser: Browser, site: Site) -> Iterator[BrowserContext]:  # noqa: F811
    made = browser.new_context(locale="vi-VN")
    _serve_axe(made, site)
    yield made
    made.close()


def test_signed_out_pages_have_no_serious_violations(
    context: BrowserContext,
    site: Site,  # noqa: F811
) -> None:
    found: dict[str, list[str]] = {}
    page = context.new_page()
    for path in ("/", "/login", "/lang/en?next=/login", "/lang/vi?next=/login"):
        _visit(page, site, path, found)
    # A refused sign-in, then the second factor and a refused code.
    page.get_by_label("Tên đăng nhập").fill("khong-ai")
    page.get_by_label("Mật khẩu").fill("sai-mat-khau-roi")
    page.get_by_role("button", name="Tiếp tục").click()
    _audit(page, site, "/login (refused)", found)
    who = _official(site, "xa-a1-a11y-dang-nhap", "commune_officer", site.world.a1)
    page.get_by_label("Tên đăng nhập").fill(who.official.username)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Tiếp tục").click()
    expect(page.get_by_label("Mã 6 chữ số")).to_be_visible()
    _audit(page, site, "/login/totp", found)
    page.get_by_label("Mã 6 chữ số").fill("000000")
    page.get_by_role("button", name="Xác nhận").click()
    _audit(page, site, "/login/totp (refused)", found)
    # Enrolment: the page with its QR code, then refused (passwords differ, a wrong code).
    token = _enrolment_token(site)
    _visit(page, site, f"/enrol/{token}", found)
    page.locator("#f-password").fill("mot-mat-khau-du-dai")
    page.locator("#f-password_again").fill("mot-mat-khau-khac-han")
    page.locator("#f-code").fill("000000")
    page.locator("main form button[type='submit']").click()
    expect(page.locator("#form-errors")).to_be_visible()
    _audit(page, site, "/enrol (refused)", found)
    assert not found, "accessibility violations:\n" + _report(found)


def test_every_page_an_official_uses_has_no_serious_violations(
    browser: Browser,  # noqa: F811
    site: Site,  # noqa: F811
) -> None:
    found: dict[str, list[str]] = {}
    world = site.world
    father, child = world.home[0]["personal_id"], world.home[2]["personal_id"]
    officer = _signed_in(
        browser, site, _official(site, "tinh-pa-a11y", "province_officer", world.pa)
    )
    _serve_axe(officer.context, site)
    forms = (
        "/registry/births/new",
        f"/registry/citizens/{child}/death?version=1",
        f"/registry/citizens/{child}/move?version=1",
        f"/registry/citizens/{child}/temporary?version=1",
        f"/registry/citizens/{child}/correct?version=1",
        "/registry/households/HH-W1/move",
        "/registry/households/HH-W1/split",
        "/registry/households/HH-W1/head",
        f"/registry/duplicates/{site.pair_id}",
    )
    for path in (
        "/registry",
        "/registry?q=tran&purpose=citizen_request",
        "/registry?q=tran",  # no purpose: refused beside the field
        "/registry?birth_year=19x5&purpose=citizen_request",
        f"/registry/citizens/{father}",  # asks for the purpose first
        f"/registry/citizens/{father}?purpose=citizen_request",
        f"/registry/citizens/{child}?purpose=citizen_request",
        f"/registry/citizens/{world.far['personal_id']}?purpose=citizen_request",  # 403 page
        "/registry/duplicates",
        *forms,
        "/registry/quality",
        "/registry/quality/findings?kind=incomplete",
    ):
        _visit(officer, site, path, found)
    # Each workflow form sent empty: the errors beside the fields are checked too.
    for path in forms:
        officer.goto(f"{site.base}{path}")
        officer.locator("main form[method='post'] button[type='submit']").first.click()
        expect(officer.locator("#form-errors")).to_be_visible()
        _audit(officer, site, f"{path} (refused)", found)
    # On a phone, the widest pages scroll their tables, never the page itself.
    officer.set_viewport_size({"width": 375, "height": 740})
    for path in (
        f"/registry/citizens/{father}?purpose=citizen_request",
        "/registry?q=tran&purpose=citizen_request",
        "/registry/households/HH-W1/split",
        f"/registry/duplicates/{site.pair_id}",
        "/registry/quality",
    ):
        officer.goto(f"{site.base}{path}")
        width = officer.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} scrolls sideways on a phone ({width} px)"
    officer.context.close()

    auditor = _signed_in(browser, site, _official(site, "thanh-tra-a11y", "ministry_auditor", "VN"))
    _serve_axe(auditor.context, site)
    for path in ("/audit", f"/audit?personal_id={father}", "/audit?since=2026-01-01"):
        _visit(auditor, site, path, found)
    auditor.context.close()

    admin = _signed_in(browser, site, _official(site, "quan-tri-a11y", "system_admin", "VN"))
    _serve_axe(admin.context, site)
    for path in ("/admin/clients", "/admin/officials"):
        _visit(admin, site, path, found)
    admin.locator("form[action='/admin/officials'] button[type='submit']").click()
    expect(admin.locator("#form-errors")).to_be_visible()
    _audit(admin, site, "/admin/officials (refused)", found)
    admin.context.close()
    assert not found, "accessibility violations:\n" + _report(found)


def test_the_keyboard_alone_signs_in_and_reaches_the_search(
    context: BrowserContext,
    site: Site,  # noqa: F811
) -> None:
    """Tab, type and Enter only: username, password, Enter; the code (focused on arrival),
    Enter; then Tab to the search box, type, choose a purpose with the arrow key, Enter;
    Tab to the first result and open it with Enter."""
    who = _official(site, "xa-a1-ban-phim", "commune_officer", site.world.a1)
    father = site.world.home[0]["personal_id"]
    page = context.new_page()
    page.goto(f"{site.base}/login")

    def focused() -> str:
        """The focused element's id, or its text for a link."""
        return str(
            page.evaluate(
                "document.activeElement.id || (document.activeElement.textContent || '').trim()"
            )
        )

    def tab_to(target: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if focused() == target:
                return
        raise AssertionError(f"Tab never reached {target!r} (stopped on {focused()!r})")

    tab_to("f-username")
    page.keyboard.type(who.official.username)
    tab_to("f-password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_label("Mã 6 chữ số")).to_be_focused()
    page.keyboard.type(pyotp.TOTP(who.secret).now())
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{site.base}/registry")
    tab_to("f-q")
    page.keyboard.type("tran van bo")
    tab_to("f-purpose")
    page.keyboard.press("ArrowDown")  # the first purpose of the list
    expect(page.get_by_label("Mục đích tra cứu")).not_to_have_value("")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert focused() == "f-q"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Kết quả")).to_be_visible()
    tab_to(father)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Trần Văn Bố")
