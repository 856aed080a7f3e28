"""The operator's catalog file as fairsub reads it: every problem is one message that
names FILE:LINE, whatever is wrong with the file."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import pytest

from fairsub.adapters.catalog_file import load_catalog
from fairsub.adapters.policy_file import load_policy
from fairsub.domain.errors import InvalidInput

DEMO = (files("fairsub") / "data" / "demo-catalog.toml").read_text(encoding="utf-8")


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# Encoding


def test_a_file_that_is_not_utf8_is_refused_with_the_line_of_the_first_bad_byte(
    tmp_path: Path,
) -> None:
    text = DEMO.replace('name = "Deutschland"', 'name = "Österreich"')
    path = tmp_path / "catalog.toml"
    path.write_bytes(text.encode("utf-8").replace("Ö".encode(), "Ö".encode("latin-1")))
    expected = (
        f"{path}:{line_of(text, 'Österreich')}: not UTF-8 text (byte 0xd6); save the file as UTF-8"
    )

    for load in (load_catalog, load_policy):
        with pytest.raises(InvalidInput) as refused:
            load(path)
        assert refused.value.message == expected


def test_a_utf8_file_with_a_byte_order_mark_or_windows_line_ends_is_read(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_bytes(b"\xef\xbb\xbf" + DEMO.replace("\n", "\r\n").encode("utf-8"))

    assert load_catalog(path).regions["JP"].name == "日本"
    assert len(load_policy(path).rules) == 4


# Line numbers, however the file spells its tables and keys


def catalog_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refused(load: Callable[[Path], object], path: Path) -> str:
    with pytest.raises(InvalidInput) as caught:
        load(path)
    return caught.value.message


@pytest.mark.parametrize(
    "header",
    [
        '[plans."antivirus-annual"]',
        "[plans.'antivirus-annual']",
        "[ plans.antivirus-annual ]",
        '[ plans . "antivirus-annual" ]  # the annual plan',
    ],
)
def test_a_quoted_or_spaced_table_header_keeps_the_line_of_the_problem_below_it(
    tmp_path: Path, header: str
) -> None:
    text = DEMO.replace("[plans.antivirus-annual]", header).replace(
        'term = "year"', 'term = "yearly"', 1
    )
    path = catalog_file(tmp_path, text)

    assert refused(load_catalog, path) == (
        f"{path}:{line_of(text, 'yearly')}: plans.antivirus-annual.term: expected 'month' or 'year'"
    )


def test_a_quoted_key_and_a_spaced_array_of_tables_keep_their_lines(tmp_path: Path) -> None:
    text = DEMO.replace('"first_purchase", "renewal"]', '"first_purchase", "upgrade"]')
    text = text.replace("[[refunds.rules]]", "[[ refunds . rules ]]").replace(
        'kinds = ["first_purchase", "upgrade"]', '"kinds" = ["first_purchase", "upgrade"]'
    )
    path = catalog_file(tmp_path, text)

    assert refused(load_policy, path).startswith(
        f"{path}:{line_of(text, 'upgrade')}: refunds.rules[3].kinds: "
    )


def test_a_problem_with_a_top_level_key_names_its_line(tmp_path: Path) -> None:
    text = DEMO.replace('vendor = "Larkspur Security"', "vendor = 42")
    path = catalog_file(tmp_path, text)

    assert refused(load_catalog, path) == (
        f"{path}:{line_of(text, 'vendor = 42')}: vendor: expected a non-empty string"
    )


def test_a_price_set_by_a_dotted_key_names_that_line(tmp_path: Path) -> None:
    text = DEMO.replace(
        "prices = { US = 499, DE = 499, GB = 449, JP = 700 }",
        "prices.US = 499\nprices.DE = -499\nprices.GB = 449",
    )
    path = catalog_file(tmp_path, text)

    assert refused(load_catalog, path).startswith(
        f"{path}:{line_of(text, 'prices.DE = -499')}: plans.antivirus-monthly.prices.DE: "
    )


def test_a_misspelt_key_in_a_plan_is_refused_at_its_line(tmp_path: Path) -> None:
    text = DEMO.replace("trial_days = 30", "trail_days = 30")
    path = catalog_file(tmp_path, text)

    assert refused(load_catalog, path) == (
        f"{path}:{line_of(text, 'trail_days')}: plans.identity-monthly.trail_days: unknown key "
        "(expected one of product, name, term, seats, prices, trial_days)"
    )


# Time zones and locales: ones this machine can format in, or the portal fails later


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus"'),
            "regions.DE.timezone: no time zone 'Mars/Olympus' (use a name from the tz database, "
            "such as Europe/Berlin)",
        ),
        (
            ('timezone = "Europe/Berlin"', 'timezone = "../Berlin"'),
            "regions.DE.timezone: no time zone '../Berlin' (use a name from the tz database, "
            "such as Europe/Berlin)",
        ),
        (
            ('locale = "de_DE"', 'locale = "xx_YY"'),
            "regions.DE.locale: no locale 'xx_YY' (use language_TERRITORY, such as de_DE)",
        ),
        (
            ('locale = "de_DE"', 'locale = "de-DE"'),
            "regions.DE.locale: no locale 'de-DE' (use language_TERRITORY, such as de_DE)",
        ),
    ],
)
def test_a_region_with_an_unknown_time_zone_or_locale_is_refused_at_its_line(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    text = DEMO.replace(*change)
    path = catalog_file(tmp_path, text)

    assert refused(load_catalog, path) == f"{path}:{line_of(text, change[1])}: {message}"
