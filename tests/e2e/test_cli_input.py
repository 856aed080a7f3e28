"""Bad input as a newcomer gives it (settings, numbers, a database not made yet): one line
on stderr saying what is wrong, exit 2, never a traceback.

The commands run in this process (the `fairsub` fixture): parsing, wiring and error
handling are those of a real one, which takes seconds to start. test_cli.py runs a few as
real processes."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from fairsub.adapters.payments import stripe as stripe_adapter
from fairsub.adapters.payments.sandbox import SandboxGateway
from fairsub.services.ports.payments import GatewayUnavailable
from tests.e2e.conftest import Fairsub, one_line
from tests.integration.stripe_fake import FakeStripe

BAD_SETTINGS = [
    (
        "FAIRSUB_OFFICIAL_DOMAINS",
        "larkspur.example",
        "FAIRSUB_OFFICIAL_DOMAINS must be a JSON list",
    ),
    ("FAIRSUB_LOG_LEVEL", "loud", "FAIRSUB_LOG_LEVEL must be one of debug, info, warning, error"),
    (
        "FAIRSUB_DATABASE_URL",
        "mysql://fairsub@db.example/fairsub",
        "FAIRSUB_DATABASE_URL is not a database fairsub can use; give sqlite:///PATH or "
        "postgresql+psycopg://",
    ),
    (
        "FAIRSUB_DATABASE_URL",
        "postgresql+asyncpg://fairsub@db.example/fairsub",
        "FAIRSUB_DATABASE_URL is not a database fairsub can use",
    ),
    ("FAIRSUB_DATABASE_URL", "sqlite:///", "FAIRSUB_DATABASE_URL needs a file path for SQLite"),
    ("FAIRSUB_SMTP_PORT", "-1", "FAIRSUB_SMTP_PORT must be a port number from 1 to 65535"),
    ("FAIRSUB_SMTP_PORT", "99999", "FAIRSUB_SMTP_PORT must be a port number from 1 to 65535"),
    ("FAIRSUB_SMTP_PORT", "not-a-port", "FAIRSUB_SMTP_PORT: input should be a valid integer"),
    ("FAIRSUB_BASE_URL", "notaurl", "FAIRSUB_BASE_URL must be http:// or https:// and a host name"),
    ("FAIRSUB_BASE_URL", "", "FAIRSUB_BASE_URL must be http:// or https://"),
    ("FAIRSUB_BASE_URL", "https://billing.example.com/portal", "FAIRSUB_BASE_URL must be"),
    ("FAIRSUB_VENDOR_NAME", "", "FAIRSUB_VENDOR_NAME is empty"),
    ("FAIRSUB_MAIL_FROM", "garbage", "FAIRSUB_MAIL_FROM has no email address in it"),
    ("FAIRSUB_OFFICIAL_EMAILS", '["x"]', "FAIRSUB_OFFICIAL_EMAILS entry 1 is not an email"),
    (
        "FAIRSUB_OFFICIAL_EMAILS",
        '["support@larkspur.example", "support at larkspur"]',
        "FAIRSUB_OFFICIAL_EMAILS entry 2 is not an email address",
    ),
    ("FAIRSUB_OFFICIAL_PHONES", '["abc"]', "FAIRSUB_OFFICIAL_PHONES entry 1 is not a phone"),
    ("FAIRSUB_OFFICIAL_PHONES", '["+00 0000 0000", "+"]', "FAIRSUB_OFFICIAL_PHONES entry 2"),
    ("FAIRSUB_OFFICIAL_PHONES", '["+00 0000 x000"]', "FAIRSUB_OFFICIAL_PHONES entry 1"),
    ("FAIRSUB_STRIPE_API_KEY", "pk_live_pasted", "FAIRSUB_STRIPE_API_KEY is a publishable key"),
    ("FAIRSUB_STRIPE_API_KEY", "whsec_pasted", "FAIRSUB_STRIPE_API_KEY is not a Stripe API key"),
    (
        "FAIRSUB_ENV",
        "production",
        "FAIRSUB_SECRET_KEY must be set to 32+ random characters in production",
    ),
]


@pytest.mark.parametrize(
    ("name", "value", "message"), BAD_SETTINGS, ids=[f"{n}={v}" for n, v, _ in BAD_SETTINGS]
)
def test_a_bad_setting_is_named_in_one_line_and_exits_2(
    fairsub: Fairsub, name: str, value: str, message: str
) -> None:
    code, out, err = fairsub("db", "upgrade", **{name: value})
    assert (code, out) == (2, "")
    assert one_line(err).startswith(f"fairsub: {message}")


def test_an_empty_data_dir_is_refused_rather_than_taken_as_the_current_directory(
    fairsub: Fairsub, tmp_path: Path
) -> None:
    code, _, err = fairsub("db", "upgrade", FAIRSUB_DATA_DIR="")
    assert code == 2
    assert one_line(err).startswith("fairsub: FAIRSUB_DATA_DIR is empty")
    assert list(tmp_path.iterdir()) == []  # no database or secret key where it was run


def test_a_data_dir_that_cannot_be_a_directory_says_why(fairsub: Fairsub, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    is_a_file = fairsub("db", "upgrade", FAIRSUB_DATA_DIR=str(a_file))
    assert is_a_file[0] == 2
    assert (
        one_line(is_a_file[2]) == f"fairsub: FAIRSUB_DATA_DIR is a file, not a directory: {a_file}"
    )
    under_a_file = fairsub("db", "upgrade", FAIRSUB_DATA_DIR=str(a_file / "var"))
    assert under_a_file[0] == 2
    assert "part of" in one_line(under_a_file[2]) and "is a file" in under_a_file[2]
    if Path("/proc/self").exists():  # a directory where nothing can be made
        nowhere = fairsub("db", "upgrade", FAIRSUB_DATA_DIR="/proc/fairsub-nope")
        assert nowhere[0] == 2
        assert one_line(nowhere[2]).startswith("fairsub: FAIRSUB_DATA_DIR cannot be made: ")


def test_a_command_before_db_upgrade_says_to_run_it(fairsub: Fairsub) -> None:
    code, _, err = fairsub("seed-demo")
    assert code == 2
    line = one_line(err)
    assert "no such table" in line
    assert line.endswith("run `fairsub db upgrade` first")


def test_a_number_too_large_for_the_database_is_bad_input(fairsub: Fairsub) -> None:
    assert fairsub("db", "upgrade")[0] == 0
    code, _, err = fairsub("cases", "resolve", "9" * 23, "--refund", "--note", "a typo")
    assert code == 2
    assert "too large" in one_line(err)


def test_a_gateway_that_does_not_answer_is_said_in_one_line_not_as_a_difference(
    fairsub: Fairsub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Exit 1 from reconcile means "the ledgers differ": an unreachable gateway is not that.
    assert fairsub("db", "upgrade")[0] == 0

    def unreachable(_self: object) -> Iterator[object]:
        raise GatewayUnavailable("Stripe could not be reached.")

    monkeypatch.setattr(SandboxGateway, "ledger", unreachable)
    code, out, err = fairsub("billing", "reconcile")
    assert (code, out) == (2, "")
    assert one_line(err) == (
        "fairsub: the payment gateway did not answer: Stripe could not be reached. Try again later."
    )


def test_good_official_channels_are_taken(fairsub: Fairsub) -> None:
    code, _, _ = fairsub(
        "db",
        "upgrade",
        FAIRSUB_OFFICIAL_EMAILS='["help@larkspur.example"]',
        FAIRSUB_OFFICIAL_PHONES='["+00 0000 0000", "(000) 000-0000", "00.00.00.00.00"]',
    )
    assert code == 0


def test_a_revoked_stripe_key_is_a_setting_to_check_not_an_unexpected_error(
    fairsub: Fairsub, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fairsub("db", "upgrade")[0] == 0
    fake = FakeStripe()  # it takes sk_test_ keys only
    monkeypatch.setattr(
        stripe_adapter,
        "StripeGateway",
        partial(stripe_adapter.StripeGateway, http_client=fake, max_network_retries=0),
    )
    secret = "sk_live_revoked51HxSecretPart"
    code, out, err = fairsub(
        "billing", "reconcile", FAIRSUB_PAYMENT_GATEWAY="stripe", FAIRSUB_STRIPE_API_KEY=secret
    )
    assert (code, out) == (2, "")
    assert one_line(err) == (
        "fairsub: the payment gateway refused fairsub's credentials: Stripe refused the API "
        "key (wrong or revoked); check FAIRSUB_STRIPE_API_KEY."
    )
    assert "51Hx" not in err


USAGE_ERRORS = [
    (["clock", "advance", "--days", "-3"], "invalid value for '--days'", "fairsub clock advance"),
    (["clock", "advance", "--days", "3d"], "invalid value for '--days'", "fairsub clock advance"),
    (["clock", "advance", "--day", "3"], "no such option: --day", "fairsub clock advance"),
    (["billing", "announce-price"], "missing argument 'plan'", "fairsub billing announce-price"),
    (["clock", "show", "today"], "got unexpected extra argument", "fairsub clock show"),
    (["nosuch"], "no such command 'nosuch'", "fairsub"),
]


@pytest.mark.parametrize(
    ("args", "message", "command"), USAGE_ERRORS, ids=[" ".join(a) for a, _, _ in USAGE_ERRORS]
)
def test_a_usage_error_is_one_line_pointing_at_the_help(
    fairsub: Fairsub, args: list[str], message: str, command: str
) -> None:
    code, out, err = fairsub(*args)
    assert (code, out) == (2, "")
    line = one_line(err)
    assert line.startswith(f"fairsub: {message}")
    assert line.endswith(f"(see {command} --help)")


def test_help_is_still_the_full_help(fairsub: Fairsub) -> None:
    code, out, err = fairsub("clock", "advance", "--help")
    assert (code, err) == (0, "")
    assert "Usage: fairsub clock advance" in out
    assert "--days" in out


def test_a_negative_price_is_refused_for_what_it_is(fairsub: Fairsub) -> None:
    assert fairsub("db", "upgrade")[0] == 0
    assert fairsub("seed-demo")[0] == 0
    announce = ["billing", "announce-price", "total360-annual", "GB"]
    negative = fairsub(*announce, "-5", "--effective", "2030-01-01")
    assert negative[0] == 2
    assert one_line(negative[2]) == "fairsub: A price cannot be negative."
    huge = fairsub(*announce, "9" * 23, "--effective", "2030-01-01")
    assert huge[0] == 2
    assert "at most" in one_line(huge[2])


def test_a_billing_run_with_a_revoked_stripe_key_says_so_and_leaves_the_charges_for_later(
    fairsub: Fairsub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRSUB_CLOCK", "test")
    assert fairsub("db", "upgrade")[0] == 0
    assert fairsub("seed-demo")[0] == 0  # cards from the sandbox: Stripe never gets that far
    assert fairsub("clock", "set", "2099-01-01")[0] == 0
    fake = FakeStripe()
    monkeypatch.setattr(
        stripe_adapter,
        "StripeGateway",
        partial(stripe_adapter.StripeGateway, http_client=fake, max_network_retries=0),
    )
    stripe_env = {"FAIRSUB_PAYMENT_GATEWAY": "stripe", "FAIRSUB_STRIPE_API_KEY": "rk_live_x"}

    code, _, err = fairsub("billing", "run", "--in-flight", "1", **stripe_env)

    assert code == 2
    assert one_line(err).startswith(
        "fairsub: the payment gateway refused fairsub's credentials: Stripe refused the API key"
    )
    assert "the next run sends those charges again under the same keys" in one_line(err)
    # The first refusal stops the rest being sent: one charge at a time, one request.
    assert len(fake.requests) == 1
    code, out, _ = fairsub("billing", "review")  # no outcome recorded: left for the janitor
    assert code == 0
    assert out.count(" unknown ") == 4
