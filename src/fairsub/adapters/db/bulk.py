"""Statements that write many rows at once, in the form each database takes best.

A billing batch writes 200 invoices, 200 attempts, 200 audit entries and so on. Both
forms below are built once, at import, and take rows keyed by column name.

- SQLite: an executemany of one prepared statement, which is cheap in process. Its text
  and the layout of a row's values are worked out once (`DriverStatement`) and the rows go
  straight to the driver: SQLAlchemy builds a dictionary of parameters per row and then
  a tuple from it, about a tenth of a SQLite billing run. (An INSERT ... RETURNING goes
  through SQLAlchemy, which sends a multi-row VALUES list.) The sandbox gateway sends its
  one-row charge INSERT the same way.
- PostgreSQL: one statement with one array parameter per column, which `unnest()` turns
  back into rows, so a batch is one INSERT ... SELECT FROM unnest(...) or one
  UPDATE ... FROM unnest(...), whose text is the same for every batch. psycopg parses
  such a text once and the server prepares it once. A multi-row VALUES list is a new
  text of thousands of parameters that both sides parse again (a tenth of a worker's time
  went to psycopg's parsing alone), and an executemany sends, binds and runs the
  statement once per row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
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
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import TableValuedAlias

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement as the driver takes it: its text with positional placeholders, and how
    a row's values are laid out for them, each through its column type's bind processor
    (a UTC time to SQLite's text, JSON to text), as SQLAlchemy would."""

    sql: str
    pick: Callable[[Row], tuple[Any, ...]]
    # (position, processor) for each placeholder whose row value is converted.
    convert: tuple[tuple[int, Callable[[Any], Any]], ...]
    # (position, value) for each placeholder whose value is fixed in the statement.
    fixed: tuple[tuple[int, Any], ...]

    @classmethod
    def build(
        cls, statement: UpdateBase, keys: Mapping[str, str], dialect: Dialect
    ) -> DriverStatement:
        """`keys`: placeholder name -> the row's key for it. A placeholder not among them
        must carry its value in the statement (version + 1, claimed_until = NULL)."""
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        placeholders = compiled.positiontup
        if placeholders is None or compiled.insert_prefetch or compiled.update_prefetch:
            # Named placeholders, or a column default to compute per row.
            raise TypeError(f"not a statement for the driver's executemany: {compiled}")
        any_key = next(iter(keys.values()))
        picked, convert, fixed = [], [], []
        for position, name in enumerate(placeholders):
            bind = compiled.binds[name]
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if name in keys:
                picked.append(keys[name])
                if processor is not None:
                    convert.append((position, processor))
                continue
            if bind.required or bind.callable is not None:
                raise TypeError(f"placeholder {name} has no row value and no fixed one")
            picked.append(any_key)  # a stand-in, so one itemgetter lays out the whole row
            fixed.append((position, processor(bind.value) if processor else bind.value))
        getter = itemgetter(*picked)
        pick = getter if len(picked) > 1 else lambda row: (getter(row),)
        return cls(compiled.string, pick, tuple(convert), tuple(fixed))

    def values(self, row: Row) -> tuple[Any, ...]:
        values = self.pick(row)
        if not self.convert and not self.fixed:
            return values
        laid = list(values)
        for position, processor in self.convert:
            laid[position] = processor(laid[position])
        for position, value in self.fixed:
            laid[position] = value
        return tuple(laid)


@dataclass(frozen=True, slots=True)
class Many:
    """One write of many rows: `execute` picks the connection's form."""

    columns: tuple[str, ...]
    each: UpdateBase  # SQLite, an executemany
    arrays: Executable  # PostgreSQL, over unnest()
    # An UPDATE's executemany parameters must not be named as columns: b_<column> instead.
    renamed: Mapping[str, str] | None = None
    returns: bool = False
    # The SQLite form as the driver takes it, made at first use (it needs the dialect).
    _driver: dict[str, DriverStatement] = field(default_factory=dict, compare=False, repr=False)

    def execute(self, connection: Connection, rows: Sequence[Row]) -> CursorResult[Any]:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite and not self.returns:
            driver = self._driver.get("sqlite")
            if driver is None:
                keys = {(self.renamed or {}).get(c, c): c for c in self.columns}
                driver = self._driver["sqlite"] = DriverStatement.build(
                    self.each, keys, connection.dialect
                )
            return connection.exec_driver_sql(driver.sql, [driver.values(row) for row in rows])
        # One row of an UPDATE (a turn-off saving its subscription) goes as the plain
        # statement on PostgreSQL too: arrays of one row took more CPU to send (median
        # 0.48 against 0.21 ms a save, in eight rounds taken turn about).
        one_update = len(rows) == 1 and self.renamed is not None
        if not sqlite and not one_update:
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
        return Many(
            tuple(columns), each.returning(*returning), arrays.returning(*returning), returns=True
        )
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
