"""Keyboard users in a real browser: where the focus is can be seen on every background."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page

from tests.e2e.test_browser_journey import sign_in

if TYPE_CHECKING:
    from tests.e2e.conftest import PageOpener

pytestmark = pytest.mark.browser

# The focused element's outline colour against the colour just outside it (WCAG 1.4.11).
FOCUS_CONTRAST = """
el => {
  const rgb = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = c => {
    const [r, g, b] = rgb(c).map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  let behind = el.parentElement;
  let colour = 'rgb(255, 255, 255)';
  while (behind) {
    const bg = getComputedStyle(behind).backgroundColor;
    const parts = bg.match(/[\\d.]+/g);
    if (parts && (parts.length < 4 || Number(parts[3]) > 0.5)) { colour = bg; break; }
    behind = behind.parentElement;
  }
  const style = getComputedStyle(el);
  const [a, b] = [lum(style.outlineColor), lum(colour)];
  return {
    width: parseFloat(style.outlineWidth),
    ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05),
  };
}
"""


def tab_to(page: Page, selector: str) -> None:
    """Press Tab until the element matching selector has the focus."""
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"Tab never reached {selector}")


@pytest.mark.parametrize(
    ("where", "selector"),
    [
        ("in the blue header", "header nav a[href='/account/billing']"),
        ("on a white card", "main a[href^='/account/subscriptions/'][href$='/turn-off']"),
        ("in the footer", "footer a[href='/contact']"),
    ],
)
def test_the_focus_ring_stands_out_from_what_is_behind_it(
    open_page: PageOpener, where: str, selector: str
) -> None:
    page = open_page()
    sign_in(page)
    tab_to(page, selector)
    seen = page.evaluate(FOCUS_CONTRAST, page.evaluate_handle("document.activeElement"))
    assert seen["width"] >= 2, where
    assert seen["ratio"] >= 3, f"focus ring {where}: contrast {seen['ratio']:.2f}:1"
