"""The public landing page: what dancu is and aggregate figures only (no personal data).

The register's pages for officials (``dancu.web.ui_*``, behind /login) and the APIs are
authenticated; nothing here reads a person's data.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from dancu.geo.models import Commune, Province
from dancu.registry.models import Citizen, Household

router = APIRouter()

_PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dancu: Cơ sở dữ liệu quốc gia về dân cư</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;
color:#1a1a1a;line-height:1.5}}
h1{{font-size:1.6rem}} table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ccc;padding:.4rem;text-align:left}}
td.n{{text-align:right;font-variant-numeric:tabular-nums}}
</style></head><body>
<main>
<h1>dancu: Cơ sở dữ liệu quốc gia về dân cư</h1>
<p>Nền tảng mã nguồn mở cho dữ liệu dân cư, định danh và xác thực điện tử (Đề án 06).
Dữ liệu ở đây là dữ liệu tổng hợp, giả lập.</p>
<p lang="en">An open-source platform for population data, electronic identification and
authentication (Project 06). All data shown is synthetic and aggregate.</p>
<table aria-label="Số liệu tổng hợp / Aggregate figures">
<tr><th scope="row">Công dân / Citizens</th><td class="n">{citizens:,}</td></tr>
<tr><th scope="row">Hộ gia đình / Households</th><td class="n">{households:,}</td></tr>
<tr><th scope="row">Tỉnh, thành phố / Provinces</th><td class="n">{provinces:,}</td></tr>
<tr><th scope="row">Xã, phường, đặc khu / Communes</th><td class="n">{communes:,}</td></tr>
</table>
<p><a href="/login">Đăng nhập cán bộ / Officials sign in</a> · <a href="/docs">API</a></p>
</main></body></html>"""


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request) -> HTMLResponse:
    """Public by design: counts only."""
    with request.app.state.sessions() as session:
        figures = {
            "citizens": session.scalar(select(func.count()).select_from(Citizen)) or 0,
            "households": session.scalar(select(func.count()).select_from(Household)) or 0,
            "provinces": session.scalar(select(func.count()).select_from(Province)) or 0,
            "communes": session.scalar(select(func.count()).select_from(Commune)) or 0,
        }
    return HTMLResponse(_PAGE.format(**figures))
