"""Regenerate the README's pictures of the portal, in docs/screenshots/.

Serves the real portal with the demo data on a throwaway data directory and a fixed clock,
so the dates in the pictures do not change from one run to the next (no email is sent:
the pictures need none); signs in as the demo customer in Debian's Chromium and saves:

    dashboard.png        /account, 1200 px wide, full page
    confirmation.png     the proof page after turning off auto-renew on the 360 annual plan
    dashboard-phone.png  /account, 390 px wide, full page

Run: .venv/bin/python scripts/screenshots.py   (or: make screenshots)
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The server start-up is shared with the browser tests; they live in the repository root.
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402
from tests.e2e.live_portal import running_portal  # noqa: E402
from tests.fakes import FakeClock  # noqa: E402

from fairsub.adapters.db import migrate  # noqa: E402
from fairsub.bootstrap import Container, bootstrap  # noqa: E402
from fairsub.config import Settings  # noqa: E402
from fairsub.entrypoints.relay_process import Relay  # noqa: E402
from fairsub.services import demo  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
OUT = ROOT / "docs" / "screenshots"


def portal_builder(data_dir: Path) -> Callable[[str], Container]:
    def build(url: str) -> Container:
        settings = Settings(
            env="dev",
            data_dir=data_dir,
            database_url=f"sqlite:///{data_dir / 'fairsub.db'}",
            base_url=url,
            mail_backend="maildir",
            log_level="warning",
        )
        container = bootstrap(settings, clock=FakeClock())
        migrate.upgrade(container.engine)
        demo.seed_demo(
            container.uows(),
            container.clock,
            container.hasher,
            container.catalog(),
            container.gateway,
        )
        return container

    return build


def signed_in_page(browser: Browser, base_url: str, width: int, *, phone: bool = False) -> Page:
    context = browser.new_context(
        base_url=base_url,
        viewport={"width": width, "height": 844 if phone else 900},
        is_mobile=phone,
        has_touch=phone,
    )
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Email").fill(demo.DEMO_EMAIL)
    page.get_by_label("Password").fill(demo.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My subscriptions", exact=True)).to_be_visible()
    return page


def save(page: Page, name: str) -> None:
    path = OUT / name
    page.screenshot(path=path, full_page=True, animations="disabled", caret="hide")
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> int:
    if not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} is missing: run `make system-deps` first.", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="fairsub-screenshots-") as data_dir,
        running_portal(portal_builder(Path(data_dir)), relay=Relay.OFF) as portal,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = signed_in_page(browser, portal.url, 1200)
            save(page, "dashboard.png")

            phone = signed_in_page(browser, portal.url, 390, phone=True)
            save(phone, "dashboard-phone.png")

            annual = page.locator("li.sub", has_text="360 Annual")
            annual.get_by_role("link", name="Turn off auto-renew").click()
            page.get_by_role("button", name="Turn off auto-renew").click()
            expect(page.get_by_role("heading", name="Done. Auto-renew: Off")).to_be_visible()
            save(page, "confirmation.png")
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
