"""Statements compiled once and run straight on the database driver.

SQLAlchemy Core builds a statement, derives its cache key, finds its compiled form and wraps the
driver call in an execution context on every call: for a one-row read that is ten times the cost of
the read itself (bench/store_calls.py). A repository's hot statements are therefore built once, with
``bindparam`` placeholders, as module constants wrapped in ``Prepared``; the store compiles each once
per dialect and hands the SQL text and the ordered values to the driver (sqlite3, asyncpg) itself,
applying the same bind and result conversions SQLAlchemy would (the NUL-safe text types, JSON,
booleans). Everything else keeps going through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

_Processor = Callable[[Any], Any] | None
_REQUIRED: Any = object()


@dataclass(frozen=True, slots=True)
class Compiled:
    """One statement's SQL for one dialect, with what turns values into arguments and rows into dicts."""

    sql: str
    names: tuple[str, ...]  # bind parameter names, in the driver's positional order
    binds: tuple[_Processor, ...]
    fixed: tuple[Any, ...]  # values bound when the statement was built (``+ 1``), else _REQUIRED
    keys: tuple[str, ...]  # result column names (empty if it returns no rows)
    results: tuple[_Processor, ...]
    returns_rows: bool
    # Derived: the values taken from the parameters in one call when every one is given at each call
    # (None otherwise), and the conversions by position: a write binds a dozen values, most of them
    # unconverted, so it pays one call for the lookups and one per conversion.
    _get: Callable[[Mapping[str, Any]], Any] | None = field(init=False, repr=False, compare=False)
    _convert: tuple[tuple[int, Callable[[Any], Any]], ...] = field(init=False, repr=False, compare=False)
    # Turns one row's values into its dict (``_row_maker``).
    _make: Callable[[Any], dict[str, Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        every = bool(self.names) and all(fixed is _REQUIRED for fixed in self.fixed)
        get: Callable[[Mapping[str, Any]], Any] | None = None
        if every and len(self.names) > 1:
            get = itemgetter(*self.names)
        elif every:
            only = self.names[0]
            get = lambda params: (params[only],)  # noqa: E731 - itemgetter of one name gives no tuple
        object.__setattr__(self, "_get", get)
        convert = tuple((i, process) for i, process in enumerate(self.binds) if process is not None)
        object.__setattr__(self, "_convert", convert)
        object.__setattr__(self, "_make", _row_maker(self.keys, self.results))

    def args(self, params: Mapping[str, Any] | None) -> list[Any]:
        """The driver's positional arguments for ``params``."""
        if not self.names:
            return []
        if self._get is not None:
            values = list(self._get(params if params is not None else {}))
        else:
            given = params or {}
            values = [
                given[name] if fixed is _REQUIRED else fixed for name, fixed in zip(self.names, self.fixed, strict=True)
            ]
        for i, process in self._convert:
            value = values[i]
            if value is not None:
                values[i] = process(value)
        return values

    def rows(self, fetched: Iterable[Any]) -> list[dict[str, Any]]:
        """The rows ``fetched`` (tuples, or records that iterate their values) as dicts by column name."""
        return list(map(self._make, fetched))

    def row(self, values: Any) -> dict[str, Any]:
        return self._make(values)


def _row_maker(keys: tuple[str, ...], results: tuple[_Processor, ...]) -> Callable[[Any], dict[str, Any]]:
    """A function of one row's values that returns its dict: the values unpacked and put in a dict
    display with the column names as constants, converted where a column needs it (None as it is).

    Written out per statement (as ``collections.namedtuple`` writes its class): a read turns every
    row into a dict, and building each from ``zip`` (a pair per value) or a loop over the columns
    cost two to three times as many instructions. A row of another length fails to unpack
    (ValueError), as ``zip(..., strict=True)`` did; of two columns of one name the last one wins.
    """
    if not keys:
        return lambda values: {} if not len(values) else _mismatch(values)
    names = [f"_{i}" for i in range(len(keys))]
    scope: dict[str, Any] = {}
    items: list[str] = []
    for i, (key, process) in enumerate(zip(keys, results, strict=True)):
        value = names[i]
        if process is not None:
            scope[f"_p{i}"] = process
            value = f"(_p{i}({value}) if {value} is not None else None)"
        items.append(f"{key!r}: {value}")
    source = f"def make(row):\n    {', '.join(names)}, = row\n    return {{{', '.join(items)}}}\n"
    exec(compile(source, "<keyplane.store.prepared row>", "exec"), scope)  # noqa: S102 - our own text
    return cast(Callable[[Any], dict[str, Any]], scope["make"])


def _mismatch(values: Any) -> dict[str, Any]:
    raise ValueError(f"a row of {len(values)} values for a statement of no columns")


class Prepared:
    """A statement built once (with ``bindparam`` placeholders) and compiled once per dialect.

    Only plain statements qualify: every parameter named by a ``bindparam`` and given at each call,
    no expanding ``IN`` lists, no column defaults left to SQLAlchemy (an insert names every value).
    """

    __slots__ = ("stmt", "is_read", "_compiled")

    def __init__(self, stmt: Executable, *, writes: bool = False) -> None:
        self.stmt = stmt
        # A locking read (FOR UPDATE), or a select with an effect (``writes``: pg_notify), belongs to
        # the write transaction.
        self.is_read = not writes and _plain_select(stmt)
        self._compiled: dict[Dialect | str, Compiled] = {}  # by dialect object, and by its name

    @staticmethod
    def possible(stmt: Executable) -> bool:
        """Whether ``stmt`` can be prepared (no parameter SQLAlchemy rewrites at each call)."""
        try:
            compiled = cast(ClauseElement, stmt).compile()
        except sa_exc.CompileError:  # a construct only the stores' dialects render (JSON paths)
            return False
        return isinstance(compiled, SQLCompiler) and not _needs_sqlalchemy(compiled)

    def compiled(self, dialect: Dialect) -> Compiled:
        # Found by the dialect object itself first: naming it (a formatted string) cost more than the
        # lookup, at every statement. A store has two or three dialect objects; tests open many.
        found = self._compiled.get(dialect)
        if found is None:
            key = f"{dialect.name}+{dialect.driver}"
            found = self._compiled.get(key)
            if found is None:
                found = self._compiled[key] = _compile(self.stmt, dialect)
            if len(self._compiled) > _DIALECTS_KEPT:
                self._compiled = {key: found}
            self._compiled[dialect] = found
        return found


_DIALECTS_KEPT = 16

# Plain selects built per call, by the shape SQLAlchemy gives them (its cache key: the statement without
# its literal values): their SQLAlchemy compiled form, and ours (None when it cannot be run directly).
_SHAPES: dict[tuple[str, Any], tuple[SQLCompiler, Compiled | None]] = {}
_SHAPES_KEPT = 2000


def dynamic(
    stmt: Executable, dialect: Dialect, params: Mapping[str, Any] | None
) -> tuple[Compiled, dict[str, Any]] | None:
    """A select built per call, as SQL for the driver and its values; None to leave it to SQLAlchemy.

    The SQL is compiled once per shape, as SQLAlchemy's statement cache would; the values are the
    statement's own literals (and ``params``), matched to that SQL the way SQLAlchemy matches them.
    """
    if not _plain_select(stmt):
        return None
    key = cast(ClauseElement, stmt)._generate_cache_key()  # noqa: SLF001
    if key is None:
        return None
    slot = (f"{dialect.name}+{dialect.driver}", key.key)
    found = _SHAPES.get(slot)
    if found is None:
        sa_compiled = cast(ClauseElement, stmt).compile(dialect=dialect, cache_key=key)
        assert isinstance(sa_compiled, SQLCompiler)
        ours = None if _needs_sqlalchemy(sa_compiled) else _compiled(sa_compiled, dialect, dynamic=True)
        if len(_SHAPES) >= _SHAPES_KEPT:
            _SHAPES.clear()
        found = _SHAPES[slot] = (sa_compiled, ours)
    sa_compiled, ours = found
    if ours is None:
        return None
    values = sa_compiled.construct_params(params=dict(params) if params else None, extracted_parameters=key.bindparams)
    return ours, dict(values)


def _plain_select(stmt: Executable) -> bool:
    return (
        bool(getattr(stmt, "is_select", False))
        and not getattr(stmt, "is_dml", False)
        and getattr(stmt, "_for_update_arg", None) is None
    )


def _needs_sqlalchemy(compiled: SQLCompiler) -> bool:
    """Expanding IN lists and literal-rendered values are rewritten by SQLAlchemy at each execution."""
    return bool(compiled.literal_execute_params or compiled.post_compile_params)


def _compile(stmt: Executable, dialect: Dialect) -> Compiled:
    compiled = cast(ClauseElement, stmt).compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if _needs_sqlalchemy(compiled):
        raise ValueError("a prepared statement cannot hold expanding or literal parameters")
    return _compiled(compiled, dialect, dynamic=False)


def _compiled(compiled: SQLCompiler, dialect: Dialect, *, dynamic: bool) -> Compiled:
    names = tuple(compiled.positiontup or ())
    processors = compiled._bind_processors  # noqa: SLF001 - the conversions SQLAlchemy itself applies
    binds = tuple(cast(_Processor, processors.get(name)) for name in names)
    # A statement built per call gives every value at each call (``dynamic``); one built once keeps the
    # values it was built with (``+ 1``).
    fixed = tuple(
        _REQUIRED if dynamic or compiled.binds[name].required else compiled.binds[name].effective_value
        for name in names
    )
    keys: list[str] = []
    results: list[_Processor] = []
    for entry in compiled._result_columns:  # noqa: SLF001
        keys.append(entry.keyname)
        results.append(entry.type._cached_result_processor(dialect, None))  # noqa: SLF001
    returns_rows = bool(compiled.returning) or bool(getattr(compiled.statement, "is_select", False))
    return Compiled(compiled.string, names, binds, fixed, tuple(keys), tuple(results), returns_rows)
