"""The demo mailbox in a real browser: a plain-text email reads as it was written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from fairsub.bootstrap import Container
from tests.builders import seeded, turn_off
from tests.conftest import make_container
from tests.e2e.live_portal import LivePortal, running_portal, wait_until
from tests.e2e.test_browser_journey import sign_in
from tests.fakes import FakeClock

pytestmark = pytest.mark.browser

# Rendered lines of the shown email against its text's lines, and whether any is cut off.
LAYOUT = """
() => {
  const pre = document.querySelector('.mail-text');
  const lines = pre.textContent.replace(/\\n$/, '').split('\\n');
  const height = parseFloat(getComputedStyle(pre).lineHeight);
  return {lines: lines.length, longest: Math.max(...lines.map(l => l.length)),
          shown: Math.round(pre.clientHeight / height), cut: pre.scrollWidth > pre.clientWidth};
}
"""


@pytest.fixture
def mailbox_portal(sqlite_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[LivePortal]:
    def build(url: str) -> Container:
        container = make_container(
            sqlite_url, tmp_path, clock, mail_backend="maildir", base_url=url, log_level="warning"
        )
        seeded(container)
        return container

    with running_portal(build) as live:
        yield live


def test_a_78_column_email_is_shown_unwrapped_on_a_desktop(
    browser: Browser, mailbox_portal: LivePortal
) -> None:
    container = mailbox_portal.container
    data = seeded(container)  # as the portal was built: seeding again changes nothing
    turn_off(container, data.alex, data.annual)
    context = browser.new_context(
        base_url=mailbox_portal.url, viewport={"width": 1100, "height": 900}
    )
    try:
        page = context.new_page()
        sign_in(page)

        def arrived() -> bool:
            page.goto("/dev/mailbox")
            return page.locator(".mail-text").count() == 1

        wait_until(arrived, "the email in the mailbox", timeout=30)
        seen = page.evaluate(LAYOUT)
    finally:
        context.close()

    assert seen["longest"] <= 78 and seen["longest"] > 60, seen
    assert seen["shown"] == seen["lines"] and not seen["cut"], seen
