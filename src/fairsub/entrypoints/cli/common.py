"""What every command shares: wiring from settings, and one way to fail."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from fairsub.bootstrap import Container, bootstrap
from fairsub.config import load_settings
from fairsub.domain.errors import FairsubError

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, never wrapped or decorated, then exit."""
    print(f"fairsub: {' '.join(message.split())}", file=sys.stderr)
    raise typer.Exit(code)


@contextmanager
def opened(**overrides: Any) -> Iterator[Container]:
    """Settings and wiring, with every expected failure turned into one line and exit 2."""
    container: Container | None = None
    try:
        container = bootstrap(load_settings(**overrides))
        yield container
    except FairsubError as error:
        fail(error.message)
    except SQLAlchemyError as error:
        missing = _schema_missing(error)
        if missing:
            fail(
                f"the database is not set up for this version of fairsub ({missing}); "
                "run `fairsub db upgrade` first"
            )
        fail(f"database error: {error.__class__.__name__}: {_first_line(error)}")
    except OverflowError as error:  # a number too big for the database's integers
        fail(f"a number given is too large ({error})")
    except (typer.Exit, typer.Abort):
        raise
    except Exception as error:  # noqa: BLE001 - a bug, but still no stack trace at the terminal
        fail(f"unexpected error: {error.__class__.__name__}: {error}", code=1)
    finally:
        if container is not None:
            container.close()


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [error.__class__.__name__])[0]


def _schema_missing(error: SQLAlchemyError) -> str | None:
    """What the database lacks, if a table or column this version needs is not there: the
    schema was never made, or is older than the code (SQLite says so in words, PostgreSQL
    by SQLSTATE 42P01 and 42703)."""
    cause = getattr(error, "orig", None)
    if cause is None:
        return None
    said = _first_line(cause)
    if getattr(cause, "sqlstate", None) in ("42P01", "42703") or said.startswith(
        ("no such table:", "no such column:")
    ):
        return said
    return None
