"""Schema migrations: an ordered list of steps; the database records the last one applied.

A step is a function over a SQLAlchemy connection, so it runs unchanged on SQLite and PostgreSQL.
Add new steps at the end; never edit a step that has shipped. A step whose work grows with the
store logs how far it is every few seconds (``_meter``), so a long start on a big store says why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, Table, false, func, inspect, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection

from keyplane.indices.backends.terms.sql import backfill_content_terms, misplaced
from keyplane.store import schema
from keyplane.store.database import Database
from keyplane.store.jsonleaf import LeafIn

log = logging.getLogger("keyplane.store")


def _v1_security(conn: Connection) -> None:
    for table in (schema.properties, schema.users, schema.roles, schema.app_privileges):
        table.create(conn, checkfirst=True)


def _v2_api_keys_and_tokens(conn: Connection) -> None:
    for table in (schema.api_keys, schema.tokens):
        table.create(conn, checkfirst=True)


def _v3_live_keys_by_expiration(conn: Connection) -> None:
    index = next(i for i in schema.api_keys.indexes if i.name == "api_keys_live_by_expiration")
    index.create(conn, checkfirst=True)


def _v4_connectors(conn: Connection) -> None:
    for table in (schema.connectors, schema.sync_jobs, schema.connector_secrets):
        table.create(conn, checkfirst=True)


def _v5_role_mappings(conn: Connection) -> None:
    schema.role_mappings.create(conn, checkfirst=True)


def _v6_user_profiles(conn: Connection) -> None:
    schema.user_profiles.create(conn, checkfirst=True)


def _v7_service_tokens(conn: Connection) -> None:
    schema.service_tokens.create(conn, checkfirst=True)


def _v8_long_service_types(conn: Connection) -> None:
    """PostgreSQL enforced varchar(512) and btree row sizes on connectors' service type, SQLite neither."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(text("ALTER TABLE connectors ALTER COLUMN service_type TYPE TEXT"))
    conn.execute(text("DROP INDEX IF EXISTS connectors_service_type"))
    conn.execute(text("CREATE INDEX connectors_service_type ON connectors USING hash (service_type)"))


def _v9_indices(conn: Connection) -> None:
    for table in (schema.indices, schema.documents):
        table.create(conn, checkfirst=True)


def _v10_refresh(conn: Connection) -> None:
    # A database created at v9 by this code already has the column (v9 creates the current table).
    columns = {c["name"] for c in inspect(conn).get_columns("indices")}
    if "refreshed_seq_no" not in columns:
        conn.execute(text("ALTER TABLE indices ADD COLUMN refreshed_seq_no BIGINT NOT NULL DEFAULT -1"))
        conn.execute(text("UPDATE indices SET refreshed_seq_no = seq_no"))
    schema.document_snapshots.create(conn, checkfirst=True)


def _v11_content_terms(conn: Connection) -> None:
    """The term rows of pushed-down searches, built for the documents already stored."""
    schema.content_terms.create(conn, checkfirst=True)
    backfill_content_terms(conn)


_COMPACT_LOCK = 7311976  # pg_advisory lock of the counts' folding (migrate holds 7311975)
_BUCKET = f"COALESCE({{row}}.expiration >> {schema.EXPIRY_BUCKET_BITS}, {schema.NEVER_EXPIRES})"
_COUNT_COLUMNS = "username, realm, type, invalidated"
_EXPIRY_COLUMNS = "type, invalidated, bucket"


# A key moves between groups only when one of these changes (last_used, metadata... do not count).
def _group_changed(differ: str) -> str:
    columns = ["username", "realm", "type", "invalidated"]
    changed = [f"OLD.{c} {differ} NEW.{c}" for c in columns]
    changed.append(f"{_BUCKET.format(row='OLD')} {differ} {_BUCKET.format(row='NEW')}")
    return " OR ".join(changed)


def _sqlite_count_triggers(conn: Connection) -> None:
    """One row per group, changed in place: SQLite has one writer, so nobody waits on a counter."""
    # Keyed by the group, without rowid: an upsert is one B-tree search (a quarter less time per insert).
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS api_key_counts (username VARCHAR(512) NOT NULL, realm VARCHAR(256) NOT NULL, "
            "type VARCHAR(16) NOT NULL, invalidated BOOLEAN NOT NULL, n BIGINT NOT NULL, "
            f"PRIMARY KEY ({_COUNT_COLUMNS})) WITHOUT ROWID"
        )
    )
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS api_key_expiry_counts (type VARCHAR(16) NOT NULL, "
            "invalidated BOOLEAN NOT NULL, bucket BIGINT NOT NULL, n BIGINT NOT NULL, "
            f"PRIMARY KEY ({_EXPIRY_COLUMNS})) WITHOUT ROWID"
        )
    )

    def add(row: str) -> str:
        return (
            f"INSERT INTO api_key_counts ({_COUNT_COLUMNS}, n) VALUES "
            f"({row}.username, {row}.realm, {row}.type, {row}.invalidated, 1) "
            f"ON CONFLICT ({_COUNT_COLUMNS}) DO UPDATE SET n = n + 1; "
            f"INSERT INTO api_key_expiry_counts ({_EXPIRY_COLUMNS}, n) VALUES "
            f"({row}.type, {row}.invalidated, {_BUCKET.format(row=row)}, 1) "
            f"ON CONFLICT ({_EXPIRY_COLUMNS}) DO UPDATE SET n = n + 1;"
        )

    def remove(row: str) -> str:
        group = (
            f"username = {row}.username AND realm = {row}.realm AND type = {row}.type"
            f" AND invalidated = {row}.invalidated"
        )
        bucket = f"type = {row}.type AND invalidated = {row}.invalidated AND bucket = {_BUCKET.format(row=row)}"
        return (
            f"UPDATE api_key_counts SET n = n - 1 WHERE {group}; "
            f"DELETE FROM api_key_counts WHERE {group} AND n = 0; "
            f"UPDATE api_key_expiry_counts SET n = n - 1 WHERE {bucket}; "
            f"DELETE FROM api_key_expiry_counts WHERE {bucket} AND n = 0;"
        )

    conn.execute(
        text(f"CREATE TRIGGER IF NOT EXISTS api_keys_counted_insert AFTER INSERT ON api_keys BEGIN {add('NEW')} END")
    )
    conn.execute(
        text(f"CREATE TRIGGER IF NOT EXISTS api_keys_counted_delete AFTER DELETE ON api_keys BEGIN {remove('OLD')} END")
    )
    conn.execute(
        text(
            "CREATE TRIGGER IF NOT EXISTS api_keys_counted_update "
            "AFTER UPDATE OF username, realm, type, invalidated, expiration "
            f"ON api_keys WHEN {_group_changed('IS NOT')} BEGIN {remove('OLD')} {add('NEW')} END"
        )
    )


# Folds each group's rows into one, at most one transaction at a time (others skip it); deleted
# rows are exactly the ones summed (DELETE ... RETURNING), so rows appended meanwhile stay as they are.
_PG_COMPACT = f"""
CREATE OR REPLACE FUNCTION keyplane_compact_api_key_counts() RETURNS void LANGUAGE sql AS $$
WITH g AS (SELECT {_COUNT_COLUMNS} FROM api_key_counts GROUP BY {_COUNT_COLUMNS} HAVING count(*) > 1),
gone AS (
    DELETE FROM api_key_counts c USING g
    WHERE c.username = g.username AND c.realm = g.realm AND c.type = g.type AND c.invalidated = g.invalidated
    RETURNING c.username, c.realm, c.type, c.invalidated, c.n
)
INSERT INTO api_key_counts ({_COUNT_COLUMNS}, n)
SELECT {_COUNT_COLUMNS}, sum(n)::bigint FROM gone GROUP BY {_COUNT_COLUMNS} HAVING sum(n) <> 0;
WITH g AS (SELECT {_EXPIRY_COLUMNS} FROM api_key_expiry_counts GROUP BY {_EXPIRY_COLUMNS} HAVING count(*) > 1),
gone AS (
    DELETE FROM api_key_expiry_counts c USING g
    WHERE c.type = g.type AND c.invalidated = g.invalidated AND c.bucket = g.bucket
    RETURNING c.type, c.invalidated, c.bucket, c.n
)
INSERT INTO api_key_expiry_counts ({_EXPIRY_COLUMNS}, n)
SELECT {_EXPIRY_COLUMNS}, sum(n)::bigint FROM gone GROUP BY {_EXPIRY_COLUMNS} HAVING sum(n) <> 0;
$$
"""

_PG_COUNT = f"""
CREATE OR REPLACE FUNCTION keyplane_count_api_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO api_key_counts ({_COUNT_COLUMNS}, n)
            VALUES (OLD.username, OLD.realm, OLD.type, OLD.invalidated, -1);
        INSERT INTO api_key_expiry_counts ({_EXPIRY_COLUMNS}, n)
            VALUES (OLD.type, OLD.invalidated, {_BUCKET.format(row="OLD")}, -1);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO api_key_counts ({_COUNT_COLUMNS}, n)
            VALUES (NEW.username, NEW.realm, NEW.type, NEW.invalidated, 1);
        INSERT INTO api_key_expiry_counts ({_EXPIRY_COLUMNS}, n)
            VALUES (NEW.type, NEW.invalidated, {_BUCKET.format(row="NEW")}, 1);
    END IF;
    -- About one write in a thousand folds the appended rows, so they stay a few thousand at most.
    IF random() < 0.001 AND pg_try_advisory_xact_lock({_COMPACT_LOCK}) THEN
        PERFORM keyplane_compact_api_key_counts();
    END IF;
    RETURN NULL;
END
$$
"""


def _pg_count_triggers(conn: Connection) -> None:
    """Writers append +1/-1 rows: concurrent transactions never wait on a shared counter row."""
    conn.execute(text(_PG_COMPACT))
    conn.execute(text(_PG_COUNT))
    for event, when in (
        ("INSERT", ""),
        ("DELETE", ""),
        ("UPDATE OF username, realm, type, invalidated, expiration", f"WHEN ({_group_changed('IS DISTINCT FROM')})"),
    ):
        name = "api_keys_counted_" + event.split()[0].lower()
        conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON api_keys"))
        conn.execute(
            text(
                f"CREATE TRIGGER {name} AFTER {event} ON api_keys FOR EACH ROW {when} "
                "EXECUTE FUNCTION keyplane_count_api_keys()"
            )
        )


def _v12_key_counts(conn: Connection) -> None:
    """Key counts kept by triggers (schema.api_key_counts), a byte-order index on name for prefixes
    (PostgreSQL), and an owner's keys in creation order."""
    conn.execute(text("DROP INDEX IF EXISTS api_keys_owner"))
    next(i for i in schema.api_keys.indexes if i.name == "api_keys_owner").create(conn)
    if conn.dialect.name == "postgresql":
        for table in (schema.api_key_counts, schema.api_key_expiry_counts):
            table.create(conn, checkfirst=True)
        conn.execute(text("CREATE INDEX IF NOT EXISTS api_keys_name_pattern ON api_keys (name text_pattern_ops)"))
        # Taken before the counts are filled: writers of other nodes wait until this commits.
        conn.execute(text("LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE"))
        _pg_count_triggers(conn)
    else:
        _sqlite_count_triggers(conn)
    # Counted afresh, so running the step again (a store set back to an older version) counts once.
    conn.execute(text("DELETE FROM api_key_counts"))
    conn.execute(text("DELETE FROM api_key_expiry_counts"))
    conn.execute(
        text(
            f"INSERT INTO api_key_counts ({_COUNT_COLUMNS}, n) SELECT {_COUNT_COLUMNS}, count(*) FROM api_keys "
            f"GROUP BY {_COUNT_COLUMNS}"
        )
    )
    conn.execute(
        text(
            f"INSERT INTO api_key_expiry_counts ({_EXPIRY_COLUMNS}, n) SELECT type, invalidated, bucket, count(*) "
            f"FROM (SELECT type, invalidated, {_BUCKET.format(row='api_keys')} AS bucket FROM api_keys) AS k "
            f"GROUP BY {_EXPIRY_COLUMNS}"
        )
    )


def _v13_keys_by_creation_and_state(conn: Connection) -> None:
    """Keys in creation order with their state beside them (schema.py): a console page walks it,
    testing each key's flag, type, expiry and last use without reading its row."""
    next(i for i in schema.api_keys.indexes if i.name == "api_keys_creation_state").create(conn, checkfirst=True)


def _v14_managed_keys(conn: Connection) -> None:
    """Which keys are managed (metadata.managed is "true"), in a column with a partial index (schema.py):
    the console's "managed" filter read every key's metadata (2 s over 1M keys)."""
    # A store created at v2 by this code, or restored from an older backup, already has the column.
    if "managed" not in {c["name"] for c in inspect(conn).get_columns("api_keys")}:
        default = "false" if conn.dialect.name == "postgresql" else "0"
        conn.execute(text(f"ALTER TABLE api_keys ADD COLUMN managed BOOLEAN NOT NULL DEFAULT {default}"))
    keys = schema.api_keys
    # Rows restored from an older backup took the default: every key is set from its metadata.
    managed = LeafIn(keys.c.metadata, ("managed",), ["true"])
    conn.execute(keys.update().where(managed, keys.c.managed == false()).values(managed=True))
    next(i for i in keys.indexes if i.name == "api_keys_managed").create(conn, checkfirst=True)


# Keys not invalidated, by expiration bucket and by the bucket of their last activity (the last use,
# else the creation): "unused for N days" is that activity before a time, and live keys are those
# past an expiration bucket, so its total sums whole buckets plus the keys of the edge buckets
# (apikeys/backends/counts/sql.py). Kept out of schema.metadata: a restore neither backs it up nor
# drops it, and this step counts it afresh; the triggers keep it in step with every write after.
_ACTIVITY = f"(COALESCE({{row}}.last_used, {{row}}.creation) >> {schema.EXPIRY_BUCKET_BITS})"
_ACTIVITY_COLUMNS = "bucket, activity"
_ACTIVITY_LOCK = 7311977  # pg_advisory lock of the activity counts' folding


def _activity_changed(differ: str) -> str:
    """Whether an update moves a key between groups; a last use within its bucket (most) does not."""
    pairs = [("OLD.invalidated", "NEW.invalidated")]
    pairs.append((_BUCKET.format(row="OLD"), _BUCKET.format(row="NEW")))
    pairs.append((_ACTIVITY.format(row="OLD"), _ACTIVITY.format(row="NEW")))
    return " OR ".join(f"{old} {differ} {new}" for old, new in pairs)


def _sqlite_activity_triggers(conn: Connection) -> None:
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS api_key_activity_counts (bucket BIGINT NOT NULL, activity BIGINT NOT NULL, "
            f"n BIGINT NOT NULL, PRIMARY KEY ({_ACTIVITY_COLUMNS})) WITHOUT ROWID"
        )
    )

    def add(row: str) -> str:
        # INSERT ... SELECT needs its WHERE before ON CONFLICT (SQLite's upsert parsing rule).
        return (
            f"INSERT INTO api_key_activity_counts ({_ACTIVITY_COLUMNS}, n) "
            f"SELECT {_BUCKET.format(row=row)}, {_ACTIVITY.format(row=row)}, 1 WHERE NOT {row}.invalidated "
            f"ON CONFLICT ({_ACTIVITY_COLUMNS}) DO UPDATE SET n = n + 1;"
        )

    def remove(row: str) -> str:
        group = (
            f"bucket = {_BUCKET.format(row=row)} AND activity = {_ACTIVITY.format(row=row)} AND NOT {row}.invalidated"
        )
        return (
            f"UPDATE api_key_activity_counts SET n = n - 1 WHERE {group}; "
            f"DELETE FROM api_key_activity_counts WHERE {group} AND n = 0;"
        )

    for name, sql in (
        ("insert", f"AFTER INSERT ON api_keys WHEN NOT NEW.invalidated BEGIN {add('NEW')} END"),
        ("delete", f"AFTER DELETE ON api_keys WHEN NOT OLD.invalidated BEGIN {remove('OLD')} END"),
        (
            "update",
            "AFTER UPDATE OF invalidated, expiration, last_used, creation ON api_keys "
            f"WHEN {_activity_changed('IS NOT')} BEGIN {remove('OLD')} {add('NEW')} END",
        ),
    ):
        conn.execute(text(f"DROP TRIGGER IF EXISTS api_keys_activity_{name}"))
        conn.execute(text(f"CREATE TRIGGER api_keys_activity_{name} {sql}"))


# Folds each group's appended rows into one (as keyplane_compact_api_key_counts).
_PG_ACTIVITY_COMPACT = f"""
CREATE OR REPLACE FUNCTION keyplane_compact_api_key_activity() RETURNS void LANGUAGE sql AS $$
WITH g AS (SELECT {_ACTIVITY_COLUMNS} FROM api_key_activity_counts GROUP BY {_ACTIVITY_COLUMNS} HAVING count(*) > 1),
gone AS (
    DELETE FROM api_key_activity_counts c USING g WHERE c.bucket = g.bucket AND c.activity = g.activity
    RETURNING c.bucket, c.activity, c.n
)
INSERT INTO api_key_activity_counts ({_ACTIVITY_COLUMNS}, n)
SELECT {_ACTIVITY_COLUMNS}, sum(n)::bigint FROM gone GROUP BY {_ACTIVITY_COLUMNS} HAVING sum(n) <> 0;
$$
"""

_PG_ACTIVITY = f"""
CREATE OR REPLACE FUNCTION keyplane_count_api_key_activity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND NOT OLD.invalidated THEN
        INSERT INTO api_key_activity_counts ({_ACTIVITY_COLUMNS}, n)
            VALUES ({_BUCKET.format(row="OLD")}, {_ACTIVITY.format(row="OLD")}, -1);
    END IF;
    IF TG_OP <> 'DELETE' AND NOT NEW.invalidated THEN
        INSERT INTO api_key_activity_counts ({_ACTIVITY_COLUMNS}, n)
            VALUES ({_BUCKET.format(row="NEW")}, {_ACTIVITY.format(row="NEW")}, 1);
    END IF;
    -- As for api_key_counts: the appended rows are folded now and then, by one transaction at a time.
    IF random() < 0.001 AND pg_try_advisory_xact_lock({_ACTIVITY_LOCK}) THEN
        PERFORM keyplane_compact_api_key_activity();
    END IF;
    RETURN NULL;
END
$$
"""


def _pg_activity_triggers(conn: Connection) -> None:
    """Writers append +1/-1 rows (as for api_key_counts): no transaction waits on a shared counter."""
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS api_key_activity_counts "
            "(bucket BIGINT NOT NULL, activity BIGINT NOT NULL, n BIGINT NOT NULL)"
        )
    )
    conn.execute(text(_PG_ACTIVITY_COMPACT))
    conn.execute(text(_PG_ACTIVITY))
    for name, event, when in (
        ("insert", "INSERT", "NOT NEW.invalidated"),
        ("delete", "DELETE", "NOT OLD.invalidated"),
        ("update", "UPDATE OF invalidated, expiration, last_used, creation", _activity_changed("IS DISTINCT FROM")),
    ):
        conn.execute(text(f"DROP TRIGGER IF EXISTS api_keys_activity_{name} ON api_keys"))
        conn.execute(
            text(
                f"CREATE TRIGGER api_keys_activity_{name} AFTER {event} ON api_keys FOR EACH ROW WHEN ({when}) "
                "EXECUTE FUNCTION keyplane_count_api_key_activity()"
            )
        )


def _v15_key_activity_counts(conn: Connection) -> None:
    """Live keys counted by expiration and last activity (api_key_activity_counts, above): the console's
    "unused for N days" total counted ~580,000 of 1M keys on every request (250-340 ms)."""
    if conn.dialect.name == "postgresql":
        # Taken before the counts are filled: writers of other nodes wait until this commits.
        conn.execute(text("LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE"))
        _pg_activity_triggers(conn)
    else:
        _sqlite_activity_triggers(conn)
    # Counted afresh, so running the step again (a store set back, a restore) counts once.
    conn.execute(text("DELETE FROM api_key_activity_counts"))
    conn.execute(
        text(
            f"INSERT INTO api_key_activity_counts ({_ACTIVITY_COLUMNS}, n) SELECT bucket, activity, count(*) "
            f"FROM (SELECT {_BUCKET.format(row='api_keys')} AS bucket, {_ACTIVITY.format(row='api_keys')} AS activity "
            f"FROM api_keys WHERE NOT invalidated) AS k GROUP BY {_ACTIVITY_COLUMNS}"
        )
    )


def _v16_term_generations(conn: Connection) -> None:
    """Term rows keyed by the generation of their document's sequence number first (SQLite), so that a
    write appends its rows instead of spreading them over the table (backends/terms/sql.py)."""
    columns = {c["name"] for c in inspect(conn).get_columns(schema.content_terms.name)}
    if "gen" not in columns:
        schema.content_terms.drop(conn)
        schema.content_terms.create(conn)
        backfill_content_terms(conn)
    elif conn.dialect.name != "postgresql" and misplaced(conn):
        # Rows restored from a backup taken before this step are all in generation 0 (PostgreSQL's
        # rows all are, and stay there).
        backfill_content_terms(conn)


def _v17_untimed_invalidated_keys(conn: Connection) -> None:
    """PostgreSQL: the retention sweep finds keys invalidated before their invalidation time was kept
    by a partial index; without it, finding the next batch reads every invalidated key (0.6 s at a
    million keys, each time the sweep runs; 0.4 ms with it). SQLite's planner keeps to
    api_keys_live_by_creation for that query whatever the index, so SQLite is left as it was."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "CREATE INDEX IF NOT EXISTS api_keys_invalidated_untimed ON api_keys (invalidated, id) "
                "WHERE invalidated = true AND invalidation IS NULL"
            )
        )


def _v18_term_sequence_numbers(conn: Connection) -> None:
    """Term rows carry their document's sequence number in their key, after the term, so that a term's
    first matches in index order come from its rows alone (backends/terms/sql.py): PostgreSQL looked
    up every matching document to keep the first ten."""
    columns = {c["name"] for c in inspect(conn).get_columns(schema.content_terms.name)}
    number = "SELECT d.seq_no FROM documents d WHERE d.index_name = {t}.index_name AND d.id = {t}.id"
    if "seq_no" not in columns:
        # A new key: the rows are copied into a new table, numbered from their documents (a row of no
        # document, which writes never leave, is not kept).
        conn.execute(text("ALTER TABLE content_terms RENAME TO content_terms_v17"))
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER INDEX content_terms_pkey RENAME TO content_terms_v17_pkey"))
        schema.content_terms.create(conn)
        conn.execute(
            text(
                "INSERT INTO content_terms (index_name, gen, term, seq_no, id, num) "
                "SELECT t.index_name, t.gen, t.term, d.seq_no, t.id, t.num FROM content_terms_v17 t "
                "JOIN documents d ON d.index_name = t.index_name AND d.id = t.id"
            )
        )
        conn.execute(text("DROP TABLE content_terms_v17"))
        if conn.dialect.name == "postgresql":
            # Statistics for the new table's plans before the first search (autovacuum may be off or late).
            conn.execute(text("ANALYZE content_terms"))
        return
    # Rows restored from a backup taken before this step hold the column's default, -1.
    conn.execute(
        text(
            f"UPDATE content_terms SET seq_no = ({number.format(t='content_terms')}) "
            f"WHERE seq_no = -1 AND EXISTS ({number.format(t='content_terms')})"
        )
    )
    conn.execute(text("DELETE FROM content_terms WHERE seq_no = -1"))


MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_security,
    _v2_api_keys_and_tokens,
    _v3_live_keys_by_expiration,
    _v4_connectors,
    _v5_role_mappings,
    _v6_user_profiles,
    _v7_service_tokens,
    _v8_long_service_types,
    _v9_indices,
    _v10_refresh,
    _v11_content_terms,
    _v12_key_counts,
    _v13_keys_by_creation_and_state,
    _v14_managed_keys,
    _v15_key_activity_counts,
    _v16_term_generations,
    _v17_untimed_invalidated_keys,
    _v18_term_sequence_numbers,
]


def stored_version(conn: Connection) -> int:
    """The version the store records (0 for a store without a schema)."""
    if not inspect(conn).has_table(schema.schema_version.name):
        return 0
    return int(conn.execute(select(schema.schema_version.c.version)).scalar() or 0)


def upgrade(conn: Connection, upto: int | None = None) -> int:
    """Apply the steps after the store's version, up to ``upto`` (default: all); the version reached.

    A restore builds the schema of its backup's version with ``upto``, loads the rows, then calls
    this again for the steps after it. A store newer than this code is left as it is.
    """
    schema.schema_version.create(conn, checkfirst=True)
    current = conn.execute(select(schema.schema_version.c.version)).scalar() or 0
    target = len(MIGRATIONS) if upto is None else upto
    if 0 < current < target:
        log.info("migrating the schema from version %d to %d", current, target)
    for version, step in enumerate(MIGRATIONS[:target], 1):
        if version > current:
            _run_step(conn, version, step)
    if current == 0:
        conn.execute(schema.schema_version.insert().values(version=target))
    elif target > current:
        conn.execute(schema.schema_version.update().values(version=target))
    return target


# -- progress of long steps ---------------------------------------------------------------------------------

PROGRESS_SECONDS = 5.0  # how often a long step says how far it is
_BACKFILL_BATCH = 1000  # documents per batch of backfill_content_terms
_TERM_ROWS_STEPS = (11, 16)  # the steps that build term rows (backfill_content_terms)


class _Meter:
    """How far a step is: rows done (when its statements can be counted) of the rows it works over."""

    def __init__(self, what: str, total: int) -> None:
        self.what = what
        self.total = total
        self.done: int | None = None

    def line(self) -> str:
        if self.done is None:
            return f"{self.what} ({self.total:,} rows)"
        return f"{self.what}: about {min(self.done, self.total):,} of {self.total:,} rows"


def _count(conn: Connection, table: Table) -> int:
    if not inspect(conn).has_table(table.name):
        return 0
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _meter(conn: Connection, version: int) -> _Meter | None:
    """The steps whose work grows with the store: v11 and v16 build term rows, v12 counts keys, v18
    numbers term rows."""
    if version in _TERM_ROWS_STEPS:
        return _Meter("building term rows of documents", _count(conn, schema.documents))
    if version == 12:
        return _Meter("counting API keys", _count(conn, schema.api_keys))
    if version == 18:
        return _Meter("numbering term rows", _count(conn, schema.content_terms))
    return None


def _counts_backfill_batches(meter: _Meter) -> Callable[..., None]:
    """A statement listener that counts the batches of v11 and v16: each reads the next documents in key order."""

    def after(_conn: Any, _cursor: Any, _sql: str, _params: Any, context: Any, _many: bool) -> None:
        statement = getattr(getattr(context, "compiled", None), "statement", None)
        if isinstance(statement, Select) and schema.documents in statement.get_final_froms():
            meter.done = (meter.done or 0) + _BACKFILL_BATCH

    return after


def _run_step(conn: Connection, version: int, step: Callable[[Connection], None]) -> None:
    """Run one step; one that takes long says how far it is every ``PROGRESS_SECONDS``."""
    latest = len(MIGRATIONS)
    meter = _meter(conn, version)
    started = time.monotonic()
    finished = threading.Event()
    listener = _counts_backfill_batches(meter) if meter is not None and version in _TERM_ROWS_STEPS else None

    def report() -> None:
        # A thread of its own: the step runs on the connection's thread (the SQLite writer, or the
        # event loop's greenlet on PostgreSQL) and cannot stop to log.
        while not finished.wait(PROGRESS_SECONDS):
            detail = meter.line() if meter is not None else "running"
            log.info("migration %d/%d: %s, %.0f s so far", version, latest, detail, time.monotonic() - started)

    watcher = threading.Thread(target=report, name=f"keyplane-migration-{version}", daemon=True)
    if listener is not None:
        sa_event.listen(conn, "after_cursor_execute", listener)
    watcher.start()
    try:
        step(conn)
    finally:
        finished.set()
        watcher.join()
        if listener is not None:
            sa_event.remove(conn, "after_cursor_execute", listener)
    seconds = time.monotonic() - started
    if seconds >= 1.0:
        log.info("migration %d/%d done in %.1f s", version, latest, seconds)


def _apply(conn: Connection) -> int:
    return upgrade(conn)


async def migrate(db: Database) -> int:
    """Bring the schema up to date; safe when several nodes start at once."""
    async with db.transaction() as conn:
        if db.is_postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(7311975)"))
        return await conn.run_sync(_apply)
