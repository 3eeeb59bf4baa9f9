"""What every back-office page shares: templates, locale, forms, errors as pages.

Pages are server-rendered (Jinja2, autoescaped) and work without JavaScript. A refused form
is shown again with what was typed and each reason beside its field (status 400); a refused
page (403, 404, 409) is a page, not JSON; an anonymous visitor is sent to the sign-in page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from dancu.enums import Relationship
from dancu.errors import ConflictError, DancuError, UnauthorizedError, ValidationFailed
from dancu.officials import purposes, records
from dancu.officials.policy import Action
from dancu.web import i18n
from dancu.web.deps import Principal
from dancu.web.errors import route_class

HERE = Path(__file__).parent
_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
# A birth date as far as it is known ("1975", "1975-03", "1975-03-15"), everywhere a page
# shows one: ``{{ person.birth_date|born(person.birth_date_precision) }}``.
_env.filters["born"] = records.birth_date_text
templates = Jinja2Templates(env=_env)
# A member's relationship to the head of household, as the forms offer it.
MEMBER_RELATIONSHIPS = tuple(r.value for r in Relationship if r is not Relationship.HEAD)


def locale_of(request: Request) -> str:
    return i18n.pick(request.cookies.get(i18n.COOKIE))


def safe_next(value: str | None, default: str = "/registry") -> str:
    """A local path to go to after signing in: never another site (open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def url(path: str, **params: object) -> str:
    """``path`` with the non-empty ``params`` as its query string."""
    clean = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(clean)}" if clean else path


# Where a form field's label lives in the catalogue, tried in this order.
_LABEL_PREFIXES = ("citizen.", "common.", "birth.", "death.", "move.", "temporary.", "split.",
                   "head.", "correct.", "enrol.", "login.", "totp.", "search.", "officials.",
                   "audit.", "residence.")  # fmt: skip


def field_label(t: Callable[..., str], name: str) -> str:
    """The label of a form field for the error summary (the field name if none)."""
    for prefix in _LABEL_PREFIXES:
        key = prefix + name
        text = t(key)
        if text != key:
            return text
    return name


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    me: Principal | None = None,
    csrf_token: str | None = None,
    **context: Any,
) -> HTMLResponse:
    locale = locale_of(request)
    t = i18n.translator(locale)
    response: HTMLResponse = templates.TemplateResponse(
        request,
        template,
        {
            "t": t,
            "field_label": lambda name: field_label(t, name),
            "reason": lambda text: i18n.reason(locale, text),
            "locale": locale,
            "me": me,
            "Action": Action,
            "csrf_token": csrf_token or (me.csrf_token if me else None),
            "purposes": [(code, purposes.label(code, locale)) for code in purposes.PURPOSES],
            "relationships": [(code, t(f"rel.{code}")) for code in MEMBER_RELATIONSHIPS],
            "url": url,
            "quote": quote,
            **context,
        },
        status_code=status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


class Form:
    """What a form posted, and what was wrong with it, by field."""

    def __init__(
        self, values: dict[str, str] | None = None, lists: dict[str, list[str]] | None = None
    ) -> None:
        self.values = values or {}
        self.lists = lists or {}
        self.errors: dict[str, list[str]] = {}
        self.message: str | None = None
        self.code: str | None = None
        self.status = 200

    @classmethod
    async def read(cls, request: Request) -> Form:
        data = await request.form()
        lists: dict[str, list[str]] = {}
        for key, value in data.multi_items():
            if isinstance(value, str):
                lists.setdefault(key, []).append(value)
        return cls({k: v[-1] for k, v in lists.items()}, lists)

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def getlist(self, name: str) -> list[str]:
        return [v for v in self.lists.get(name, []) if v]

    def refuse(self, exc: DancuError) -> None:
        self.message = exc.message
        self.code = exc.code
        self.status = max(self.status, exc.status)
        if isinstance(exc, ValidationFailed):
            for problem in exc.problems:
                self.errors.setdefault(problem.field or "", []).append(problem.reason)

    @property
    def invalid(self) -> bool:
        return bool(self.errors or self.message)


@contextmanager
def attempt(session: Session, form: Form) -> Iterator[None]:
    """Run a change in a savepoint: a refusal (bad input, a stale record) is noted on
    ``form`` and undoes everything the change had written, while the request's transaction
    goes on. Other refusals (not signed in, out of scope) propagate as error pages."""
    savepoint = session.begin_nested()
    try:
        yield
    except (ValidationFailed, ConflictError) as exc:
        savepoint.rollback()
        form.refuse(exc)
    else:
        savepoint.commit()


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    next_url = target if request.method == "GET" else None
    return RedirectResponse(url("/login", next=next_url), status_code=303)


def error_page(request: Request, exc: Exception) -> Response:
    if isinstance(exc, UnauthorizedError):
        return login_redirect(request)
    if isinstance(exc, DancuError):
        status, code, message = exc.status, exc.code, exc.message
    else:
        status, code, message = 400, "invalid_input", str(exc)
    return render(request, "error.html", status=status, code=code, message=message)


PageRoute = route_class(error_page)
"""A page: refusals become pages (or the sign-in page), never JSON."""
