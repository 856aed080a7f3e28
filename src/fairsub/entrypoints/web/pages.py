"""Rendering portal pages: templates, the reader's formatting, and the CSRF token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

from fairsub.adapters import display
from fairsub.bootstrap import Container
from fairsub.domain.accounts import Account
from fairsub.domain.money import Money
from fairsub.entrypoints.web.security import csrf_token

# Templates ship with the package and change only with it, like the code: no stat() of every
# template a page uses on every request to see whether it changed (auto_reload).
templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html",), disabled_extensions=("txt",), default=True
        ),
        auto_reload=False,
    )
)


@dataclass(frozen=True, slots=True)
class Formatter:
    """Money and time as this reader expects them: their locale, their time zone."""

    locale: str
    timezone: str
    language: str = "en"  # the page's language: "de" on the German contract pages

    def money(self, value: Money) -> str:
        return display.money(value, self.locale, self.language)

    def date(self, moment: datetime) -> str:
        return display.local_date(moment, self.timezone, self.locale, self.language)

    def datetime(self, moment: datetime) -> str:
        return display.local_datetime(moment, self.timezone, self.locale, self.language)


ANONYMOUS = Formatter("en_GB", "UTC")


def container(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


def render(
    request: Request,
    name: str,
    status_code: int = 200,
    *,
    account: Account | None = None,
    **context: Any,
) -> HTMLResponse:
    app = container(request)
    fmt = Formatter(account.locale, account.timezone) if account else ANONYMOUS
    context.update(
        account=account,
        fmt=fmt,
        csrf=csrf_token(app.secret_key, request.state.csrf_seed),
        vendor=app.settings.vendor_name,
        dev=app.settings.is_dev,
        now=app.clock.now(),
        test_clock=app.settings.is_dev and app.settings.clock.value == "test",
        status_code=status_code,
    )
    return templates.TemplateResponse(request, name, context, status_code=status_code)
