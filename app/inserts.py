"""Multi-row INSERTs of rows that need nothing back, handed to the driver's executemany.

Through SQLAlchemy's own executemany, building each row's parameters (a dictionary per row,
then each value through its type) cost more than SQLite's insert of the row. Here the
statement is compiled once per table, columns and dialect, and each row becomes a tuple (or,
for a driver with named parameters, a dictionary) of values passed through the same bind
processors SQLAlchemy would use, with the same Python-side column defaults.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Column, Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class CompiledInsert:
    """An INSERT of some columns of a table, ready for the driver."""

    sql: str
    names: tuple[str, ...]  # the parameters, in the statement's order
    processors: tuple[Processor, ...]  # each parameter's bind processor, if its type has one
    defaults: dict[str, Callable[[], Any]]  # the columns a row leaves out that have a default
    positional: bool  # "?" parameters (tuples) rather than named ones (dictionaries)

    def parameters(self, rows: Sequence[dict[str, Any]]) -> list[Any]:
        """The rows as the driver takes them. Built column by column, each column's values
        through its processor with `map`: a batch has thousands of rows of a dozen values, and
        a Python loop over every value cost more than the insert."""
        if not rows:
            return []
        given = [name for name in self.names if name not in self.defaults]
        for row in rows:
            if len(row) != len(given):
                raise _other_columns(row)
        try:
            by_name = _columns_of(rows, given)
        except KeyError:  # as wide as the first row, but other keys
            odd = next(row for row in rows if not row.keys() >= set(given))
            raise _other_columns(odd) from None
        columns = []
        for name, process in zip(self.names, self.processors, strict=True):
            default = self.defaults.get(name)
            values = [default() for _ in rows] if default else by_name[name]
            columns.append(list(map(process, values)) if process else values)
        if not columns:  # every column left to the database: one empty row each
            return [() if self.positional else {} for _ in rows]
        if self.positional:
            return list(zip(*columns, strict=True))
        return [dict(zip(self.names, values, strict=True)) for values in zip(*columns, strict=True)]


def _columns_of(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, Sequence[Any]]:
    """Each named column's values, in the rows' order."""
    if not names:
        return {}
    if len(names) == 1:  # itemgetter of one name gives the value, not a tuple
        return {names[0]: [row[names[0]] for row in rows]}
    take = itemgetter(*names)
    return dict(zip(names, zip(*map(take, rows), strict=True), strict=True))


def _other_columns(row: dict[str, Any]) -> ValueError:
    return ValueError(f"rows of one INSERT must have the same columns: {sorted(row)}")


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany INSERT of rows that all have the same keys. Whatever the session holds
    pending is written first, as an ORM statement would."""
    if not rows:
        return
    session.flush()
    connection = session.connection()
    compiled = compile_insert(connection.dialect, table, tuple(rows[0]))
    connection.exec_driver_sql(compiled.sql, compiled.parameters(rows))


@lru_cache(maxsize=128)
def compile_insert(dialect: Dialect, table: Table, keys: tuple[str, ...]) -> CompiledInsert:
    columns = {column.key: column for column in table.columns}
    unknown = set(keys) - columns.keys()
    if unknown:
        raise ValueError(f"{table.name} has no columns {sorted(unknown)}")
    compiled = insert(table).compile(dialect=dialect, column_keys=list(keys), for_executemany=True)
    names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.params)
    missing = set(names) - set(keys)
    return CompiledInsert(
        sql=compiled.string,
        names=names,
        processors=tuple(
            columns[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        ),
        defaults={name: _default(columns[name]) for name in missing},
        positional=compiled.positional,
    )


def _default(column: Column[Any]) -> Callable[[], Any]:
    """The column's Python-side default as a function of nothing."""
    default = column.default
    if default is not None and default.is_scalar:
        value = default.arg  # type: ignore[attr-defined]
        return lambda: value
    if default is not None and default.is_callable:
        # SQLAlchemy hands a column default's function the execution context, wrapping one
        # that takes no argument; ours never look at it.
        function = default.arg  # type: ignore[attr-defined]
        return lambda: function(None)
    raise ValueError(f"{column} is left out of the rows and has no Python-side default")
