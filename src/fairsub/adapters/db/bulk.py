"""Statements that write many rows at once, in the form each database takes best.

A billing batch writes 200 invoices, 200 attempts, 200 audit entries and so on. Both
forms below are built once, at import, and take rows keyed by column name.

- SQLite: an executemany of one prepared statement, which is cheap in process. (For an
  INSERT ... RETURNING, SQLAlchemy sends a multi-row VALUES list.)
- PostgreSQL: one statement with one array parameter per column, which `unnest()` turns
  back into rows, so a batch is one INSERT ... SELECT FROM unnest(...) or one
  UPDATE ... FROM unnest(...), whose text is the same for every batch. psycopg parses
  such a text once and the server prepares it once. A multi-row VALUES list is a new
  text of thousands of parameters that both sides parse again (a tenth of a worker's time
  went to psycopg's parsing alone), and an executemany sends, binds and runs the
  statement once per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Executable,
    Table,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.selectable import TableValuedAlias

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Many:
    """One write of many rows: `execute` picks the connection's form."""

    columns: tuple[str, ...]
    each: Executable  # SQLite, an executemany
    arrays: Executable  # PostgreSQL, over unnest()
    # An UPDATE's executemany parameters must not be named as columns: b_<column> instead.
    renamed: Mapping[str, str] | None = None

    def execute(self, connection: Connection, rows: Sequence[Row]) -> CursorResult[Any]:
        # One row of an UPDATE (a turn-off saving its subscription) goes as the plain
        # statement on PostgreSQL too: arrays of one row took more CPU to send (median
        # 0.48 against 0.21 ms a save, in eight rounds taken turn about).
        one_update = len(rows) == 1 and self.renamed is not None
        if connection.dialect.name == "postgresql" and not one_update:
            columns = {f"u_{c}": [row[c] for row in rows] for c in self.columns}
            return connection.execute(self.arrays, columns)
        if self.renamed is not None:
            names = self.renamed
            rows = [{names[c]: v for c, v in row.items()} for row in rows]
        return connection.execute(self.each, list(rows))


def inserting(
    table: Table,
    columns: Sequence[str],
    *,
    returning: Sequence[ColumnElement[Any]] = (),
    skip_conflicts_on: Sequence[str] = (),
) -> Many:
    """INSERT the rows; with `skip_conflicts_on`, a row whose key is already there is left
    out (ON CONFLICT DO NOTHING). Ask for a returned column that is unique in the batch to
    match rows up: neither form promises the rows' order."""
    rows = _unnest(table, columns)
    arrays = pg_insert(table).from_select(list(columns), select(*rows.c))
    each = sqlite_insert(table)
    if skip_conflicts_on:
        arrays = arrays.on_conflict_do_nothing(index_elements=list(skip_conflicts_on))
        each = each.on_conflict_do_nothing(index_elements=list(skip_conflicts_on))
    if returning:
        return Many(tuple(columns), each.returning(*returning), arrays.returning(*returning))
    return Many(tuple(columns), each, arrays)


def updating(
    table: Table, key: str, columns: Sequence[str], also: Mapping[str, Any] | None = None
) -> Many:
    """UPDATE each row whose `key` is given: `columns` to the row's values, and the `also`
    columns to the same expression for every row."""
    rows = _unnest(table, [key, *columns])
    arrays = (
        table.update()
        .values({c: rows.c[c] for c in columns} | dict(also or {}))
        .where(table.c[key] == rows.c[key])
    )
    each = (
        table.update()
        .values({c: bindparam(f"b_{c}") for c in columns} | dict(also or {}))
        .where(table.c[key] == bindparam(f"b_{key}"))
    )
    names = (key, *columns)
    return Many(names, each, arrays, renamed={c: f"b_{c}" for c in names})


def _unnest(table: Table, columns: Sequence[str]) -> TableValuedAlias:
    arrays = [bindparam(f"u_{c}", type_=ARRAY(table.c[c].type)) for c in columns]
    return func.unnest(*arrays).table_valued(*columns).render_derived()
