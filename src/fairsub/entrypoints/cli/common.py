"""What every command shares: wiring from settings, and one way to fail."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn
from sqlalchemy.exc import SQLAlchemyError

from fairsub.bootstrap import Container, bootstrap
from fairsub.config import load_settings
from fairsub.domain.errors import FairsubError
from fairsub.services.ports.payments import GatewayRefusedCredentials, GatewayUnavailable

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def progress(label: str, *more: ProgressColumn) -> Progress:
    """A bar on stderr that goes when done, shown only at a terminal: written to a pipe or
    a file, Rich leaves an empty line where it stood, before whatever comes next."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        *more,
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def counted(number: int, thing: str, things: str = "") -> str:
    """'1 entry', '2 entries': `things` is the plural when adding an s will not do."""
    return f"{number} {thing if number == 1 else (things or thing + 's')}"


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, never wrapped or decorated, then exit."""
    print(f"fairsub: {' '.join(message.split())}", file=sys.stderr)
    raise typer.Exit(code)


class OneLineErrors(typer.Typer):
    """A Typer app whose usage errors (a bad option, a missing argument, an unknown command)
    are one line on stderr and exit 2, as every other bad input is. Click's standalone mode,
    which Typer runs by default, prints five: the usage, a hint and a boxed message."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            code = super().__call__(*args, **{**kwargs, "standalone_mode": False})
        except typer.TyperException as error:  # Typer's Click: usage errors and the like
            if type(error).__name__ == "NoArgsIsHelpError":  # the help is printed already
                sys.exit(2)
            context = getattr(error, "ctx", None)  # a usage error knows the command
            hint = f" (see {context.command_path} --help)" if context is not None else ""
            print(f"fairsub: {_plain(error.format_message())}{hint}", file=sys.stderr)
            sys.exit(error.exit_code)
        except typer.Abort:
            print("fairsub: aborted", file=sys.stderr)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)  # what typer.Exit said, else success


def _plain(message: str) -> str:
    """Click's message as part of a sentence: one line, lower case, no full stop."""
    message = " ".join(message.split()).rstrip(".")
    return message[:1].lower() + message[1:]


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
    except GatewayRefusedCredentials as error:  # a setting to fix, not a wait
        fail(f"the payment gateway refused fairsub's credentials: {error}")
    except GatewayUnavailable as error:  # like a database that does not answer: not a bug
        fail(f"the payment gateway did not answer: {error} Try again later.")
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
