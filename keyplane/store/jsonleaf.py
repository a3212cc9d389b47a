"""Values inside a JSON column, read the way Elasticsearch's ``flattened`` fields index them.

Elasticsearch keeps API-key metadata in a flattened field: every leaf is a keyword, so ``true`` is
the text ``"true"``, ``42`` is ``"42"``, and each element of an array is a value of its own. These
SQL constructs give the same view on SQLite and PostgreSQL (SQLite's ``json_extract`` alone would
turn ``true`` into ``1``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Table, func, literal, literal_column, or_, select, text, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Subquery

from keyplane.store.nul import SealedString, seal

# Paths are written into the SQL as literals, not bound, so that PostgreSQL sees the same expression
# in SELECT, GROUP BY and ORDER BY. The column's strings are sealed (store/nul.py): so are path keys,
# compared values (SealedString) and the text read out.


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sqlite_path(path: tuple[str, ...]) -> str:
    """A SQLite JSON path literal, ``'$."a"."b"'`` (SQLite paths cannot hold a double quote)."""
    return _quote("$" + "".join('."' + seal(key).replace('"', "") + '"' for key in path))


def _pg_node(column_sql: str, path: tuple[str, ...]) -> str:
    """The JSON value at ``path`` of a PostgreSQL column."""
    keys = ", ".join(_quote(seal(key)) for key in path)
    return f"(CAST({column_sql} AS JSON) #> ARRAY[{keys}]::TEXT[])"


class _OnColumn:
    """What SQLAlchemy needs to find the table a construct reads."""

    column: ColumnElement[Any]

    @property
    def _from_objects(self) -> list[Any]:
        return self.column._from_objects

    def get_children(self, **kw: Any) -> list[Any]:
        return [self.column]


class LeafText(_OnColumn, ColumnElement[str]):
    """The keyword text of one JSON leaf (NULL when absent; JSON text for an array or object)."""

    type = SealedString()
    inherit_cache = False  # the path is written into the SQL, so compiled forms are not shared

    def __init__(self, column: ColumnElement[Any], path: tuple[str, ...]) -> None:
        self.column = column
        self.path = path


class LeafIn(_OnColumn, ColumnElement[bool]):
    """True when the leaf, or any element of the array at that path, has one of ``values`` as its text."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, column: ColumnElement[Any], path: tuple[str, ...], values: list[str]) -> None:
        self.column = column
        self.path = path
        self.values = values


def _text_sqlite(kind: str, value: str) -> str:
    return f"CASE {kind} WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST({value} AS TEXT) END"


@compiles(LeafText, "sqlite")
def _leaf_text_sqlite(element: LeafText, compiler: SQLCompiler, **kw: Any) -> str:
    col = compiler.process(element.column, **kw)
    path = _sqlite_path(element.path)
    return _text_sqlite(f"json_type({col}, {path})", f"json_extract({col}, {path})")


@compiles(LeafText, "postgresql")
def _leaf_text_pg(element: LeafText, compiler: SQLCompiler, **kw: Any) -> str:
    node = _pg_node(compiler.process(element.column, **kw), element.path)
    return f"({node} #>> '{{}}')"


@compiles(LeafIn, "sqlite")
def _leaf_in_sqlite(element: LeafIn, compiler: SQLCompiler, **kw: Any) -> str:
    col = compiler.process(element.column, **kw)
    path = _sqlite_path(element.path)
    values = ", ".join(compiler.process(literal(v, SealedString()), **kw) for v in element.values)
    # json_each walks an array's elements, or yields a scalar itself (with a NULL key); object members are skipped.
    return (
        f"EXISTS (SELECT 1 FROM json_each({col}, {path}) AS leaf "
        f"WHERE (leaf.key IS NULL OR typeof(leaf.key) = 'integer') "
        f"AND {_text_sqlite('leaf.type', 'leaf.atom')} IN ({values}))"
    )


@compiles(LeafIn, "postgresql")
def _leaf_in_pg(element: LeafIn, compiler: SQLCompiler, **kw: Any) -> str:
    node = _pg_node(compiler.process(element.column, **kw), element.path)
    values = ", ".join(compiler.process(literal(v, SealedString()), **kw) for v in element.values)
    elements = f"CASE WHEN json_typeof({node}) = 'array' THEN {node} ELSE '[]'::json END"
    return (
        f"(({node} #>> '{{}}') IN ({values}) OR EXISTS (SELECT 1 FROM json_array_elements_text({elements}) "
        f"AS leaf(v) WHERE leaf.v IN ({values})))"
    )


def leaf_rows(table: Table, key: str, column: str, path: tuple[str, ...], *, postgres: bool) -> Subquery:
    """One row ``(key, v)`` per keyword value at ``path`` in each row of ``table``: a scalar gives one
    row, an array one row per element, an object or a missing path none (what aggregations count)."""
    if postgres:
        node = _pg_node(f'"{table.name}"."{column}"', path)
        elements = (
            f"SELECT json_array_elements_text({node}) AS v WHERE json_typeof({node}) = 'array' "
            f"UNION ALL SELECT {node} #>> '{{}}' WHERE json_typeof({node}) NOT IN ('array', 'object', 'null')"
        )
        leaf = text(elements).columns(v=SealedString()).subquery("leaf").lateral("leaf")
        rows = select(table.c[key].label("key"), leaf.c.v.label("v")).select_from(table.join(leaf, true()))
        return rows.subquery("leaves")
    each = func.json_each(table.c[column], literal_column(_sqlite_path(path)))
    leaf = each.table_valued("key", "type", "atom").alias("leaf")
    value = literal_column(_text_sqlite("leaf.type", "leaf.atom"), SealedString())
    rows = (
        select(table.c[key].label("key"), value.label("v"))
        .select_from(table.join(leaf, true()))
        .where(
            or_(leaf.c.key.is_(None), func.typeof(leaf.c.key) == "integer"),
            leaf.c.type.notin_(["object", "array", "null"]),
        )
    )
    return rows.subquery("leaves")
