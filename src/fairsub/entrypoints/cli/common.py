"""What every command shares: wiring from settings, and one way to fail."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from fairsub.bootstrap import Container, bootstrap
from fairsub.config import Settings
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
        container = bootstrap(Settings(**overrides))
        yield container
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        fail(f"invalid setting {where}: {first['msg']}")
    except FairsubError as error:
        fail(error.message)
    except SQLAlchemyError as error:
        fail(f"database error: {error.__class__.__name__}: {str(error).splitlines()[0]}")
    except (typer.Exit, typer.Abort):
        raise
    except Exception as error:  # noqa: BLE001 - a bug, but still no stack trace at the terminal
        fail(f"unexpected error: {error.__class__.__name__}: {error}", code=1)
    finally:
        if container is not None:
            container.close()
