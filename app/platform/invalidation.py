"""Cached reads declare what they depend on; writes invalidate by themselves.

A cached read says once which rows or tables its value is computed from
(`RowRead`, `TableRead`). Every session is a `TrackedSession`: its listeners
see each flushed object and each UPDATE/DELETE statement, turn the table and
primary key they touch into the cache keys that depend on them, and keep those
keys on the session. `commit` (app/platform/session.py) invalidates them once
the transaction has committed and before the response is sent. So a write path
cannot forget an invalidation: it would have to bypass the session.

A statement that changes a table some `RowRead` depends on must name the rows
by primary key (`pk == value` or `pk IN (...)` in its WHERE clause, the value
in the statement or, for a statement built once, in the execution's
parameters). One that does not is refused with `UntrackedWrite` instead of
leaving stale entries: add the key to the statement or change the declaration.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any

from sqlalchemy import Table, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList, ColumnElement

from app.platform.database import Base, TrackedSession

_PENDING = "cache_invalidations"


class UntrackedWrite(RuntimeError):
    """A statement changed rows a cached read depends on without naming them."""


def _table_of(model: type[Base]) -> Table:
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


@dataclass(frozen=True)
class RowRead:
    """A value cached per row of `model`'s table, keyed by its primary key."""

    name: str
    model: type[Base]
    # Bumped when the cached representation changes, so a rolling deploy never
    # reads bytes written by the other version.
    version: int = 1

    def __post_init__(self) -> None:
        _register(_table_of(self.model), self)

    def key(self, primary_key: object) -> str:
        return f"v{self.version}:{self.name}:{primary_key}"


@dataclass(frozen=True)
class TableRead:
    """One value computed from whole tables: any change to them invalidates it."""

    name: str
    models: tuple[type[Base], ...]
    version: int = 1

    def __post_init__(self) -> None:
        for model in self.models:
            _register(_table_of(model), self)

    @property
    def key(self) -> str:
        return f"v{self.version}:{self.name}:global"


# Table name -> the cached reads that depend on it. Filled by the declarations
# themselves, as SQLAlchemy's metadata is filled by the models.
_DEPENDENTS: dict[str, list[RowRead | TableRead]] = {}


def _register(table: Table, read: RowRead | TableRead) -> None:
    dependents = _DEPENDENTS.setdefault(table.name, [])
    if all(existing.name != read.name for existing in dependents):
        dependents.append(read)


def dependents_of(table: Table) -> tuple[RowRead | TableRead, ...]:
    return tuple(_DEPENDENTS.get(table.name, ()))


def keys_for(table: Table, primary_keys: Iterable[object] | None) -> set[str]:
    """The cache keys a change to `primary_keys` of `table` invalidates.

    `primary_keys` None means "rows unknown", refused when a RowRead depends on
    the table.
    """
    keys: set[str] = set()
    for read in dependents_of(table):
        if isinstance(read, TableRead):
            keys.add(read.key)
        elif primary_keys is None:
            raise UntrackedWrite(
                f"a statement changed {table.name} rows without naming their primary key; "
                f"the cached read {read.name!r} depends on them"
            )
        else:
            keys.update(read.key(pk) for pk in primary_keys)
    return keys


def pending(session: Session) -> set[str]:
    """Keys to invalidate once this session's transaction has committed."""
    keys: set[str] = session.info.setdefault(_PENDING, set())
    return keys


def take_pending(session: Session) -> list[str]:
    return sorted(session.info.pop(_PENDING, set()))


@event.listens_for(TrackedSession, "after_flush")
def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    changed = chain(session.new, (o for o in session.dirty if session.is_modified(o)), session.deleted)
    for instance in changed:
        mapper = inspect(instance).mapper
        table = mapper.local_table
        if isinstance(table, Table) and dependents_of(table):
            identity = mapper.primary_key_from_instance(instance)
            pending(session).update(keys_for(table, [identity[0] if len(identity) == 1 else tuple(identity)]))


@event.listens_for(TrackedSession, "do_orm_execute")
def _on_statement(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    statement: Any = state.statement
    # An ORM statement (update(Product)) names an annotated copy of the table.
    table = state.bind_mapper.local_table if state.bind_mapper is not None else statement.table
    if not isinstance(table, Table) or not dependents_of(table):
        return
    primary_keys = None if state.is_insert else _primary_keys_named(table, statement.whereclause, state.parameters)
    pending(state.session).update(keys_for(table, primary_keys))


def _primary_keys_named(table: Table, where: ColumnElement[Any] | None, parameters: object) -> set[object] | None:
    """The primary keys a WHERE clause restricts to, when it says so directly:
    `pk == v` or `pk IN (...)`, alone or as one term of an AND."""
    if where is None or len(table.primary_key.columns) != 1:
        return None
    for clause in _conjuncts(where):
        if (keys := _pk_condition(table, clause, parameters)) is not None:
            return keys
    return None


def _conjuncts(clause: ColumnElement[Any]) -> Iterator[ColumnElement[Any]]:
    if isinstance(clause, BooleanClauseList) and clause.operator is operators.and_:
        for term in clause.clauses:
            yield from _conjuncts(term)
    else:
        yield clause


def _pk_condition(table: Table, clause: ColumnElement[Any], parameters: object) -> set[object] | None:
    if not isinstance(clause, BinaryExpression) or not isinstance(clause.right, BindParameter):
        return None
    left = clause.left
    if getattr(getattr(left, "table", None), "name", None) != table.name or not getattr(left, "primary_key", False):
        return None
    values = _bound_values(clause.right, parameters)
    if values is None:
        return None
    if clause.operator is operators.eq:
        return set(values)
    if clause.operator is operators.in_op:
        keys: set[object] = set()
        for value in values:
            if not isinstance(value, (list, tuple, set)):
                return None
            keys.update(value)
        return keys
    return None


def _bound_values(bind: BindParameter[Any], parameters: object) -> list[object] | None:
    """The values `bind` takes in a statement's executions (one, or one per
    parameter set of an executemany), resolved as SQLAlchemy does: the
    execution's parameter of that name first, then the value built into the
    statement. None when an execution gives it no value: rows unknown."""
    if isinstance(parameters, Mapping):
        executions: list[Any] = [parameters]
    else:
        executions = list(parameters) if isinstance(parameters, Iterable) else []
    values: list[object] = []
    for execution in executions or [{}]:
        if bind.key in execution:
            values.append(execution[bind.key])
        elif bind.required:  # bindparam("name") without a value
            return None
        else:
            values.append(bind.effective_value)
    return values
