"""Connectors, sync jobs and sealed secrets in SQL.

Documents are stored whole; the columns beside them are what lists filter and sort on. Every
rewrite is a compare-and-set on ``seq_no``, so concurrent writers never overwrite each other.
"""

from __future__ import annotations

import builtins
from typing import Any

import orjson
from sqlalchemy import (
    Integer,
    LargeBinary,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    exc,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql import Executable, Select
from sqlalchemy.sql.elements import ColumnElement

from keyplane import jsontext
from keyplane.connectors.backends.base import Stored
from keyplane.connectors.clock import now_ns
from keyplane.connectors.core import index_taken
from keyplane.connectors.model import ConnectorFilter, Doc
from keyplane.errors import KeyplaneError, StatusError
from keyplane.query.dates import parse_date
from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.store.prepared import Prepared

c, j, s = schema.connectors, schema.sync_jobs, schema.connector_secrets
_COLUMNS = ("index_name", "name", "service_type", "description", "deleted", "doc")
# The statements of every request on one connector, built once (keyplane.store.prepared).
_GET = Prepared(select(c).where(c.c.id == bindparam("id")))
_EXISTS = Prepared(select(c.c.id).where(c.c.id == bindparam("id")))
_JOB = Prepared(select(j).where(j.c.id == bindparam("id")))
_SEALED = Prepared(select(s.c.sealed).where(s.c.id == bindparam("id")))
_INDEX_TAKEN = Prepared(
    select(c.c.id)
    .where(c.c.index_name == bindparam("index_name"), c.c.deleted == false(), c.c.id != bindparam("id"))
    .limit(1)
)
_INSERT = Prepared(insert(c).values(id=bindparam("id"), seq_no=1, **{n: bindparam(n) for n in _COLUMNS}))
_OVERWRITE = Prepared(
    update(c).where(c.c.id == bindparam("id")).values(seq_no=c.c.seq_no + 1, **{n: bindparam(n) for n in _COLUMNS})
)
_REPLACE = Prepared(
    update(c)
    .where(c.c.id == bindparam("id"), c.c.seq_no == bindparam("seq_no"))
    .values(seq_no=c.c.seq_no + 1, **{n: bindparam(n) for n in _COLUMNS})
)
# The same, also on the stored document itself (``replace(unchanged=True)``).
_REPLACE_UNCHANGED = Prepared(
    update(c)
    .where(
        c.c.id == bindparam("id"),
        c.c.seq_no == bindparam("seq_no"),
        c.c.doc == bindparam("previous_doc", type_=c.c.doc.type),
    )
    .values(seq_no=c.c.seq_no + 1, **{n: bindparam(n) for n in _COLUMNS})
)


def _text(value: Any, width: int | None = None) -> str | None:
    """A column's value from a document field: documents written through the document APIs are stored
    as given, so a field may hold anything; the column keeps strings only, cut to its width."""
    if not isinstance(value, str):
        return None
    return value[:width] if width is not None else value


def _columns(doc: Doc, text: str | None = None) -> dict[str, Any]:
    """The row of ``doc`` (``text``: its JSON text, when already written out)."""
    return {
        "index_name": _text(doc.get("index_name"), 512),
        "name": _text(doc.get("name")),
        "service_type": _text(doc.get("service_type")),
        "description": _text(doc.get("description")),
        "deleted": doc.get("deleted") is True,
        "doc": jsontext.dumps(doc).decode() if text is None else text,
    }


def _index_columns(doc: Doc) -> tuple[Any, bool]:
    """The columns the one-live-connector-per-index rule is about (``_columns``)."""
    return _text(doc.get("index_name"), 512), doc.get("deleted") is True


def _job_columns(doc: Doc) -> dict[str, Any]:
    """The columns a job list filters on; a job written as a raw document may lack any of them."""
    connector = doc.get("connector")
    connector_id = connector.get("id") if isinstance(connector, dict) else None
    return {
        "connector_id": _text(connector_id, 512) or "",
        "status": _text(doc.get("status"), 32) or "",
        "job_type": _text(doc.get("job_type"), 32) or "",
        "doc": jsontext.dumps(doc).decode(),
    }


def _created_ns(doc: Doc) -> int:
    """When a job written as a raw document was created, for the newest-first order of job lists."""
    try:
        return parse_date(doc.get("created_at")) * 1_000_000
    except KeyplaneError:
        return now_ns()


def _stored(row: Any) -> Stored:
    return Stored(row["id"], orjson.loads(row["doc"]), row["seq_no"])


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _page_statements(
    table: Any, conds: list[ColumnElement[bool]], order: tuple[Any, ...]
) -> tuple[Executable, Executable]:
    """The count of matching documents and a page of them, its bounds bound as ``start`` and ``size``."""
    count_stmt = select(func.count()).select_from(table)
    # Only what a Stored needs: the other columns are copies of document fields.
    page_stmt = (
        select(table.c.id, table.c.doc, table.c.seq_no).order_by(*order).offset(bindparam("start", type_=Integer))
    )
    page_stmt = page_stmt.limit(bindparam("size", type_=Integer))
    if conds:
        count_stmt, page_stmt = count_stmt.where(and_(*conds)), page_stmt.where(and_(*conds))
    return count_stmt, page_stmt


async def _page(
    db: Database,
    statements: tuple[Executable | Prepared, Executable | Prepared],
    params: dict[str, Any],
    start: int,
    size: int,
) -> tuple[int, list[Stored]]:
    """The total of matching documents and one page of them."""
    total, rows = await _page_rows(db, statements, params, start, size)
    return total, [_stored(r) for r in rows]


async def _page_rows(
    db: Database,
    statements: tuple[Executable | Prepared, Executable | Prepared],
    params: dict[str, Any],
    start: int,
    size: int,
    totalled: Executable | Prepared | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """The total of matching documents and the rows of one page of them (``totalled``: the page with
    its total, ``_totalled``, when built beforehand)."""
    count_stmt, page_stmt = statements
    # Each read alone (``Database.execute_alone``, without ``transaction()``'s context managers): reads
    # take a snapshot each in a transaction too (SQLite's readers, PostgreSQL's READ COMMITTED).
    if size > 0:
        # The page and its total in one statement: one round trip on PostgreSQL where two
        # statements take two, one statement less to run on SQLite.
        stmt = totalled if totalled is not None else _totalled(count_stmt, page_stmt)
        rows = (await db.execute_alone(stmt, params | {"start": start, "size": size})).rows
        if rows:
            return int(rows[0][_TOTAL]), rows
    # No page asked, or no row to carry the total (none matched, or the page is past them).
    return int((await db.execute_alone(count_stmt, params)).scalar() or 0), []


# The column of a page's rows that holds the total of matching documents (_totalled).
_TOTAL = "keyplane_total"


def _totalled(count_stmt: Executable | Prepared, page_stmt: Executable | Prepared) -> Select[Any]:
    """The page with the count as a column of each row: an uncorrelated scalar subquery, which
    either store computes once. Both statements come from the same conditions, so the parameters they
    name are the same ones, with the same values."""
    count = count_stmt.stmt if isinstance(count_stmt, Prepared) else count_stmt
    page = page_stmt.stmt if isinstance(page_stmt, Prepared) else page_stmt
    assert isinstance(count, Select) and isinstance(page, Select)
    # Not correlated with the page's table (SQLAlchemy would by default): a count of its own.
    return page.add_columns(count.correlate(None).scalar_subquery().label(_TOTAL))


_ORDER = (c.c.index_name.asc().nulls_last(), c.c.id)
# Connector lists without name lists (their IN lists vary in length), prepared once per shape:
# (whether deleted connectors are included, whether a query text is given). The count, the page, the
# page with its total, and the page with its total as SQLite runs it best (``_live_sqlite_page``).
_LISTS: dict[tuple[bool, bool], tuple[Prepared, Prepared, Prepared, Prepared]] = {}
# The sort key of a live connector list on SQLite (``_live_sqlite_page``).
_SORT_KEY = "keyplane_sort_key"


def _live_sqlite_page(conds: list[ColumnElement[bool]]) -> Select[Any]:
    """The page and its total of a list of live connectors only, for SQLite, in ``_ORDER``.

    SQLite's index on the index name lists live connectors in that order, but it cannot tell that the
    names are unique, so for the ``id`` after it every list filled a temporary b-tree with the rows of
    every connector, documents included: about half of a list's cost. Live index names are unique
    (``connectors_live_index_name``), so only connectors without one have ``id`` as their order. They
    come last: the union's sort key is the index name of named connectors, TEXT, and the ``id`` of the
    others as a BLOB, which SQLite sorts after any TEXT, by its bytes, as the BINARY collation sorts
    the text. SQLite merges the two parts in that order, the named ones straight from the index.
    """
    count = select(func.count()).select_from(c).where(and_(*conds)).correlate(None).scalar_subquery()
    columns = (c.c.id, c.c.doc, c.c.seq_no, count.label(_TOTAL))
    named = select(*columns, c.c.index_name.label(_SORT_KEY)).where(*conds, c.c.index_name.is_not(None))
    unnamed = select(*columns, cast(c.c.id, LargeBinary).label(_SORT_KEY)).where(*conds, c.c.index_name.is_(None))
    page = union_all(named, unnamed).order_by(literal_column(_SORT_KEY)).offset(bindparam("start", type_=Integer))
    return page.limit(bindparam("size", type_=Integer))  # type: ignore[return-value]


def _list_conditions(selector: ConnectorFilter) -> list[ColumnElement[bool]]:
    """The conditions of a connector list; the query text is bound as ``pattern`` and ``pattern_lower``."""
    conds: list[ColumnElement[bool]] = []
    if selector.index_names:
        conds.append(c.c.index_name.in_(selector.index_names))
    if selector.names:
        conds.append(c.c.name.in_(selector.names))
    if selector.service_types:
        conds.append(c.c.service_type.in_(selector.service_types))
    if selector.query:
        pattern = bindparam("pattern", type_=c.c.name.type)
        conds.append(
            or_(
                c.c.index_name.like(pattern, escape="\\"),
                c.c.name.like(pattern, escape="\\"),
                func.lower(c.c.description).like(bindparam("pattern_lower", type_=c.c.name.type), escape="\\"),
            )
        )
    if not selector.include_deleted:
        conds.append(c.c.deleted == false())
    return conds


# PostgreSQL's list_texts statements by shape, as _LISTS (``_versioned_page``): a page's versions alone,
# and the page with its documents.
_VERSIONED: dict[tuple[bool, bool], tuple[Prepared, Prepared]] = {}
# Connector texts of the pages kept by a PostgreSQL repository (``SqlConnectorRepository._pages``), at most.
MAX_TEXTS = 512


# PostgreSQL's system column naming the transaction that wrote a row's version: with the ``seq_no``, it
# names one stored form of a connector, even across a delete and a new connector of the same id (whose
# ``seq_no`` starts at 1 again), which a later transaction writes. Freezing keeps it (PostgreSQL >= 9.4).
_XMIN = "connectors.xmin::text"
# One connector's version as text: its xmin, seq_no and id, the id's length first so that the texts of
# two pages are equal only when every id and version is (ids may hold any character).
_VERSION = literal_column(
    f"{_XMIN} || ',' || connectors.seq_no || ',' || length(connectors.id) || ',' || connectors.id", Text
)


def _versioned_page(conds: list[ColumnElement[bool]], docs: bool = True) -> Select[Any]:
    """One row: the total of matching connectors, the versions of a page of them as one text (in
    ``_ORDER``, null when the page is empty) and (``docs``) the page's ids and documents as two arrays.

    The text, not arrays, for the versions: it is one value to compare with the page kept, where
    arrays cost a conversion per element in Python."""
    columns = [c.c.id, c.c.index_name, _VERSION.label("version"), *([c.c.doc] if docs else [])]
    page = (
        select(*columns)
        .where(*conds)
        .order_by(*_ORDER)
        .offset(bindparam("start", type_=Integer))
        .limit(bindparam("size", type_=Integer))
        .subquery()
    )
    order = (page.c.index_name.asc().nulls_last(), page.c.id)
    count = select(func.count()).select_from(c).where(*conds).scalar_subquery()
    versions = func.string_agg(page.c.version, aggregate_order_by(literal_column("''"), *order), type_=Text)
    names = ("id", "doc") if docs else ()
    arrays = [func.array_agg(aggregate_order_by(page.c[n], *order)).label(n + "s") for n in names]
    return select(count.label(_TOTAL), versions.label("versions"), *arrays).select_from(page)


def _shape(selector: ConnectorFilter) -> tuple[bool, bool] | None:
    """The shape a list's statements are prepared for (``_LISTS``, ``_VERSIONED``): whether deleted
    connectors are included and whether a query text is given; None for a list with name lists, whose
    IN lists vary in length and are built per call."""
    if selector.index_names or selector.names or selector.service_types:
        return None
    return selector.include_deleted, bool(selector.query)


def _list_params(selector: ConnectorFilter) -> dict[str, Any]:
    """The parameters of a list's conditions (``_list_conditions``): the query text's patterns."""
    pattern = _like(selector.query) if selector.query else None
    return {"pattern": pattern, "pattern_lower": pattern.lower()} if pattern else {}


class SqlConnectorRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        # PostgreSQL: pages listed, by their list's shape, query text and bounds: the page's versions
        # (``_VERSION``) and its connectors' ids and texts (``_list_texts_versioned``); ``_kept`` texts.
        self._pages: dict[tuple[Any, ...], tuple[str, builtins.list[tuple[str, str]]]] = {}
        self._kept = 0

    async def get(self, connector_id: str) -> Stored | None:
        row = (await self.db.execute_alone(_GET, {"id": connector_id})).first()  # a read alone
        return Stored(row["id"], orjson.loads(row["doc"]), row["seq_no"], row["doc"]) if row else None

    async def _check_index(self, conn: Any, connector_id: str, doc: Doc) -> None:
        # As the columns hold it: a raw document's index_name may be any JSON value.
        name = _text(doc.get("index_name"), 512)
        if name is None or doc.get("deleted") is True:
            return
        if (await conn.execute(_INDEX_TAKEN, {"index_name": name, "id": connector_id})).first():
            raise index_taken(name)

    async def index_in_use(self, index_name: str, connector_id: str) -> bool:
        async with self.db.transaction() as conn:
            try:
                await self._check_index(conn, connector_id, {"index_name": index_name})
            except StatusError:
                return True
        return False

    async def put(self, connector_id: str, doc: Doc) -> bool:
        """Index the whole document; True when it was created."""
        for attempt in range(2):
            try:
                async with self.db.transaction() as conn:
                    await self._check_index(conn, connector_id, doc)
                    values = _columns(doc) | {"id": connector_id}
                    if (await conn.execute(_OVERWRITE, values)).rowcount:
                        return False
                    await conn.execute(_INSERT, values)
                    return True
            except exc.IntegrityError:
                # A concurrent writer created this id or took the index name; look again once.
                if attempt:
                    raise index_taken(doc.get("index_name")) from None
        return False

    async def replace(
        self, stored: Stored, previous: Doc | None = None, *, unchanged: bool = False, previous_text: str | None = None
    ) -> bool:
        """Write a changed document back if nobody changed it since it was read."""
        values = _columns(stored.doc, stored.text)
        values["id"], values["seq_no"] = stored.id, stored.seq_no
        statement = _REPLACE
        if unchanged and previous is not None:
            # The text written last time: documents are serialised the same way each time.
            if previous_text is None:
                previous_text = jsontext.dumps(previous).decode()
            statement, values["previous_doc"] = _REPLACE_UNCHANGED, previous_text
        try:
            if previous is not None and _index_columns(previous) == _index_columns(stored.doc):
                # No index-name check to read first: the write is the transaction (``Database.execute_alone``,
                # without ``transaction()``'s context managers).
                res = await self.db.execute_alone(statement, values)
            else:
                async with self.db.transaction() as conn:
                    await self._check_index(conn, stored.id, stored.doc)
                    # the write alone after the reads: no BEGIN and COMMIT round trips on PostgreSQL
                    res = await conn.execute_alone(statement, values)
        except exc.IntegrityError:
            raise index_taken(stored.doc.get("index_name")) from None
        return res.rowcount == 1

    async def insert(self, connector_id: str, doc: Doc) -> bool:
        """Create the document unless the id is taken; False when it was."""
        try:
            async with self.db.transaction() as conn:
                if (await conn.execute(_EXISTS, {"id": connector_id})).first():
                    return False
                await self._check_index(conn, connector_id, doc)
                await conn.execute(_INSERT, _columns(doc) | {"id": connector_id})
        except exc.IntegrityError:
            if await self.get(connector_id) is not None:
                return False
            raise index_taken(doc.get("index_name")) from None
        return True

    async def delete(self, connector_id: str, seq_no: int | None = None) -> bool:
        cond = c.c.id == connector_id
        if seq_no is not None:
            cond = and_(cond, c.c.seq_no == seq_no)
        async with self.db.transaction() as conn:
            res = await conn.execute(delete(c).where(cond))
        return res.rowcount > 0

    async def all(self) -> list[Stored]:
        async with self.db.transaction() as conn:
            rows = (await conn.execute(select(c).order_by(c.c.id))).rows
        return [_stored(r) for r in rows]

    async def list(self, selector: ConnectorFilter, start: int, size: int) -> tuple[int, list[Stored]]:
        total, rows = await self._list_rows(selector, start, size)
        return total, [_stored(r) for r in rows]

    async def list_texts(
        self, selector: ConnectorFilter, start: int, size: int
    ) -> tuple[int, builtins.list[tuple[str, str]]]:
        if self.db.is_postgres and size > 0 and _shape(selector) is not None:
            return await self._list_texts_versioned(selector, start, size)
        total, rows = await self._list_rows(selector, start, size)
        return total, [(r["id"], r["doc"]) for r in rows]

    async def _list_texts_versioned(
        self, selector: ConnectorFilter, start: int, size: int
    ) -> tuple[int, builtins.list[tuple[str, str]]]:
        """PostgreSQL: ``list_texts`` from the page kept when its versions are the same.

        A console lists the same unchanged connectors again and again: the page's versions are read
        first, as one text (``_versioned_page``); when they are the versions of the page kept for the
        same list, that page (the same list object) is the answer. Otherwise the page is read again
        whole, as one row: its ids and documents as two arrays beside its total (asyncpg decodes an
        array's texts in C, where each row would cost a record and a dict in Python)."""
        shape = _shape(selector)
        assert shape is not None
        statements = _VERSIONED.get(shape)
        if statements is None:
            conds = _list_conditions(selector)
            statements = _VERSIONED[shape] = (
                Prepared(_versioned_page(conds, docs=False)),
                Prepared(_versioned_page(conds)),
            )
        params = _list_params(selector)
        key = (shape, params.get("pattern"), start, size)
        params["start"], params["size"] = start, size
        # a read alone: no transaction()'s context managers around it
        row = (await self.db.execute_alone(statements[0], params)).rows[0]
        versions = row["versions"]
        if versions is None:  # an empty page
            return int(row[_TOTAL]), []
        kept = self._pages.get(key)
        if kept is not None and kept[0] == versions:
            return int(row[_TOTAL]), kept[1]
        row = (await self.db.execute_alone(statements[1], params)).rows[0]
        texts = list(zip(row["ids"] or [], row["docs"] or [], strict=True))
        if row["versions"] is not None:
            if self._kept + len(texts) > MAX_TEXTS:
                self._pages.clear()
                self._kept = 0
            old = self._pages.pop(key, None)
            self._kept += len(texts) - (len(old[1]) if old is not None else 0)
            self._pages[key] = (row["versions"], texts)
        return int(row[_TOTAL]), texts

    async def _list_rows(
        self, selector: ConnectorFilter, start: int, size: int
    ) -> tuple[int, builtins.list[dict[str, Any]]]:
        params = _list_params(selector)
        shape = _shape(selector)
        if shape is None:
            statements = _page_statements(c, _list_conditions(selector), _ORDER)
            return await _page_rows(self.db, statements, params, start, size)
        prepared = _LISTS.get(shape)
        if prepared is None:
            conds = _list_conditions(selector)
            count_stmt, page_stmt = _page_statements(c, conds, _ORDER)
            totalled = Prepared(_totalled(count_stmt, page_stmt))
            # With deleted connectors, index names repeat: their order needs the ``id`` after it.
            on_sqlite = totalled if selector.include_deleted else Prepared(_live_sqlite_page(conds))
            prepared = _LISTS[shape] = (Prepared(count_stmt), Prepared(page_stmt), totalled, on_sqlite)
        totalled = prepared[2] if self.db.is_postgres else prepared[3]
        return await _page_rows(self.db, prepared[:2], params, start, size, totalled)

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(c))


class SqlSyncJobRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, job_id: str, connector_id: str, created_ns: int, doc: Doc) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                insert(j).values(
                    id=job_id,
                    connector_id=connector_id,
                    status=doc["status"],
                    job_type=doc["job_type"],
                    created_ns=created_ns,
                    doc=jsontext.dumps(doc).decode(),
                    seq_no=1,
                )
            )

    async def get(self, job_id: str) -> Stored | None:
        row = (await self.db.execute_alone(_JOB, {"id": job_id})).first()  # a read alone
        return Stored(row["id"], orjson.loads(row["doc"]), row["seq_no"]) if row else None

    async def replace(self, stored: Stored) -> bool:
        async with self.db.transaction() as conn:
            res = await conn.execute(
                update(j)
                .where(and_(j.c.id == stored.id, j.c.seq_no == stored.seq_no))
                .values(seq_no=j.c.seq_no + 1, **_job_columns(stored.doc))
            )
        return res.rowcount == 1

    async def put(self, job_id: str, doc: Doc, *, create_only: bool = False) -> bool | None:
        """Index a whole job document: True when created, False when replaced, None when ``create_only``
        found the id taken."""
        for attempt in range(2):
            try:
                async with self.db.transaction() as conn:
                    if (await conn.execute(select(j.c.id).where(j.c.id == job_id))).first():
                        if create_only:
                            return None
                        await conn.execute(
                            update(j).where(j.c.id == job_id).values(seq_no=j.c.seq_no + 1, **_job_columns(doc))
                        )
                        return False
                    await conn.execute(
                        insert(j).values(id=job_id, created_ns=_created_ns(doc), seq_no=1, **_job_columns(doc))
                    )
                    return True
            except exc.IntegrityError:
                if attempt:  # a concurrent writer created the id between the look and the insert
                    raise
        return None

    async def delete(self, job_id: str, seq_no: int | None = None) -> bool:
        cond = j.c.id == job_id
        if seq_no is not None:
            cond = and_(cond, j.c.seq_no == seq_no)
        async with self.db.transaction() as conn:
            res = await conn.execute(delete(j).where(cond))
        return res.rowcount > 0

    async def all(self) -> list[Stored]:
        async with self.db.transaction() as conn:
            rows = (await conn.execute(select(j).order_by(j.c.created_ns, j.c.id))).rows
        return [_stored(r) for r in rows]

    async def delete_for_connector(self, connector_id: str) -> int:
        async with self.db.transaction() as conn:
            res = await conn.execute(delete(j).where(j.c.connector_id == connector_id))
        return res.rowcount

    async def list(
        self, connector_id: str | None, status: str | None, job_types: list[str], start: int, size: int
    ) -> tuple[int, list[Stored]]:
        conds: list[ColumnElement[bool]] = []
        if connector_id:
            conds.append(j.c.connector_id == connector_id)
        if status:
            conds.append(j.c.status == status)
        if job_types:
            conds.append(j.c.job_type.in_(job_types))
        return await _page(self.db, _page_statements(j, conds, (j.c.created_ns.desc(), j.c.id)), {}, start, size)

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(j))


class SqlSecretRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, secret_id: str, sealed: str) -> bool:
        """Store a sealed value; True when the id was new."""
        for attempt in range(2):
            try:
                async with self.db.transaction() as conn:
                    res = await conn.execute(update(s).where(s.c.id == secret_id).values(sealed=sealed))
                    if res.rowcount:
                        return False
                    await conn.execute(insert(s).values(id=secret_id, sealed=sealed))
                    return True
            except exc.IntegrityError:
                if attempt:
                    raise
        return False

    async def get(self, secret_id: str) -> str | None:
        row = (await self.db.execute_alone(_SEALED, {"id": secret_id})).first()  # a read alone
        return row["sealed"] if row else None

    async def delete(self, secret_id: str) -> bool:
        async with self.db.transaction() as conn:
            res = await conn.execute(delete(s).where(s.c.id == secret_id))
        return res.rowcount > 0

    async def delete_all(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(delete(s))
