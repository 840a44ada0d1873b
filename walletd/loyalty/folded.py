"""A balance change's rows in one statement: its new ledger entry, its changed rows and the
push rows that announce it.

The ORM's flush sends one statement per row (a scan: INSERT its entry, UPDATE the member, UPDATE
the card) and spends more of a scan's CPU working out what to send than on anything else in the
scan (bench/hotpath_profile.py, py-spy: a fifth of the scan's samples in the flush, beside the
round trips themselves). On Postgres, data-modifying CTEs send the same writes as one statement:
one round trip, planned once per shape, with the ORM's objects left as a flush leaves them.
Scans, point redemptions and coupons redeemed at the till write this way (3, 4 and 4 statements
in all, authentication included).

It writes what a flush would (every column of the new row, the columns set on the others, SQL
expressions such as the card's transaction-id tag included; a column set again to its own
value is written again, where the flush would skip it) and falls back to the flush whenever it
cannot stand in for it: not Postgres, the new row already flushed, another new or deleted
object, a relationship changed, a column left to a default. A statement handed over (`Later`:
the push rows' INSERT) goes with the writes, or after the flush.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Table, TextClause, bindparam, insert, inspect, select, true, update
from sqlalchemy.orm import Mapper, Session, make_transient_to_detached
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql import ClauseElement

from walletd.push.outbox import Later

# One changed row's part of a statement's shape: its table, and per changed column either None
# (a bound value) or the SQL expression it is set to.
_Shape = tuple[Table, tuple[tuple[str, ClauseElement | None], ...]]
# A new row's table, its key attribute, and per other column: attribute, parameter, defaulted.
_InsertPlan = tuple[Table, str, tuple[tuple[str, str, bool], ...]]


def flush_folded(session: Session, new: Any | None, later: Later | None = None) -> None:
    """Flush the session, then send `later`; on Postgres, when the session's changes are one
    new row (`new`, or none) and changed columns of loaded rows, all of it as one statement."""
    if not _write_folded(session, new, later):
        session.flush()
        if later is not None:
            session.execute(later.statement, later.params)


def _write_folded(session: Session, new: Any | None, later: Later | None) -> bool:
    """INSERT `new` (pending) and UPDATE the changed columns of the session's other objects in
    one statement; afterwards the session holds them as a flush would have left them.

    False, with nothing written, where this cannot stand in for the flush.
    """
    if session.get_bind().dialect.name != "postgresql" or session.deleted:
        return False
    values: dict[str, Any] = {}
    table: Table | None = None
    if new is None:
        if session.new:
            return False
    else:
        new_state = inspect(new)
        if not new_state.pending or len(session.new) != 1:
            return False
        plan = _insert_plan(new_state.mapper)
        if plan is None:
            return False
        table, primary_key, columns = plan
        for key, bind, defaulted in columns:
            if key not in new_state.dict and defaulted:
                return False  # left to a default: the flush knows how to fill it
            values[bind] = new_state.dict.get(key)
    # In a fixed order (table, key), so one kind of change always has one statement.
    states = sorted(
        (state for state in map(inspect, session.dirty) if state.committed_state),
        key=lambda state: (state.mapper.local_table.name, state.identity),
    )
    shapes: list[_Shape] = []
    for index, state in enumerate(states):
        names = _column_names(state.mapper)
        target = state.mapper.local_table
        if not state.persistent or names is None or not isinstance(target, Table):
            return False
        shape: list[tuple[str, ClauseElement | None]] = []
        for key in sorted(state.committed_state):
            name = names.get(key)
            if name is None:
                return False  # a relationship changed: the flush's business
            value = state.dict.get(key)
            if isinstance(value, ClauseElement):
                shape.append((name, value))
            else:
                shape.append((name, None))
                values[f"u{index}_{name}"] = value
        values[f"u{index}_pk"] = state.identity[0]
        shapes.append((target, tuple(shape)))
    if not shapes and table is None:
        if later is not None:  # nothing of the session's to write
            session.execute(later.statement, later.params)
        return True
    with session.no_autoflush:
        if later is not None:
            values.update(later.params)
        statement = _statement(table, tuple(shapes), None if later is None else later.statement)
        row = session.execute(statement, values).first()
    if row is None:
        raise StaleDataError("a changed row was gone when its change was written")
    new_id, *returned = row
    if new is not None:
        # The new row becomes persistent as if loaded: the public way for an object whose
        # INSERT the session did not send.
        session.expunge(new)
        setattr(new, primary_key, new_id)
        make_transient_to_detached(new)
        session.add(new)
    taken = iter(returned)
    for state in states:
        for key in sorted(state.committed_state):
            if isinstance(state.dict.get(key), ClauseElement):
                state.dict[key] = next(taken)
        # What the unit of work does after its own UPDATE (private, but without it the commit's
        # flush walks these objects again, a twentieth of a scan's CPU).
        state._commit_all(state.dict, session.identity_map)
    return True


@functools.lru_cache(maxsize=16)
def _insert_plan(mapper: Mapper[Any]) -> _InsertPlan | None:
    """A mapped class's table, its key attribute, and per other column: the attribute, the
    bound parameter's name, and whether the column has a default."""
    table = mapper.local_table
    if not isinstance(table, Table) or len(mapper.primary_key) != 1:
        return None
    columns = tuple(
        (prop.key, f"n_{prop.columns[0].name}",
         prop.columns[0].default is not None or prop.columns[0].server_default is not None)
        for prop in mapper.column_attrs
        if not prop.columns[0].primary_key
    )  # fmt: skip
    return table, mapper.get_property_by_column(mapper.primary_key[0]).key, columns


@functools.lru_cache(maxsize=16)
def _column_names(mapper: Mapper[Any]) -> dict[str, str] | None:
    """Column attribute -> column name, for a class with a single-column key."""
    if len(mapper.primary_key) != 1:
        return None
    return {prop.key: prop.columns[0].name for prop in mapper.column_attrs}


@functools.lru_cache(maxsize=64)  # shapes are few; expressions must be module constants
def _statement(
    new_table: Table | None, shapes: tuple[_Shape, ...], later: TextClause | None
) -> Any:
    """The folded statement of one shape, built once: building and cache-keying a statement
    costs a scan more than compiling it does (SQLAlchemy memoises a statement object's key).
    Its first column is the new row's key (without a new row: the first changed row's)."""
    joined: Any = None
    out: list[Any] = []
    if new_table is not None:
        joined = (
            insert(new_table)
            .values({c.name: bindparam(f"n_{c.name}", type_=c.type)
                     for c in new_table.columns if not c.primary_key})
            .returning(*new_table.primary_key.columns)
            .cte("n")
        )  # fmt: skip
        out.append(joined.c[new_table.primary_key.columns[0].name])
    for index, (table, columns) in enumerate(shapes):
        key = table.primary_key.columns[0]
        assignments = {
            name: expression if expression is not None
            else bindparam(f"u{index}_{name}", type_=table.c[name].type)
            for name, expression in columns
        }  # fmt: skip
        # The expressions' values come back, so the objects hold what was written.
        returned = [table.c[name] for name, expression in columns if expression is not None]
        part = (
            update(table)
            .where(key == bindparam(f"u{index}_pk", type_=key.type))
            .values(assignments)
            .returning(key, *returned)
            .cte(f"u{index}")
        )
        if joined is None:
            joined = part
            out.append(part.c[key.name])
        else:
            joined = joined.join(part, true())
        out.extend(part.c[c.name] for c in returned)
    statement = select(*out).select_from(joined)
    if later is not None:  # a write of its own, sent with the rest (its names are not n_/u_)
        statement = statement.add_cte(later.columns().cte("later"))
    return statement
