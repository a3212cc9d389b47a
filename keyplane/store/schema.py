"""The relational schema, one table per kind of record, shared by SQLite and PostgreSQL.

Documents keep their Elasticsearch JSON in a ``doc`` column; the columns beside it are the ones
queries filter or sort on. ``seq_no`` grows on every write and guards read-modify-write updates. Text columns are
``SafeString``/``SafeJSON`` so that PostgreSQL keeps the NUL characters Elasticsearch accepts.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Double, Index, Integer, MetaData, Table, Text, false, true

from keyplane.store.nul import SafeJSON, SafeString, SafeText

metadata = MetaData()

schema_version = Table(
    "keyplane_schema",
    metadata,
    Column("version", Integer, primary_key=True),
)

users = Table(
    "users",
    metadata,
    Column("username", SafeString(512), primary_key=True),
    Column("password_hash", SafeText, nullable=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("reserved", Boolean, nullable=False, default=False),
    Column("doc", SafeText, nullable=False),  # roles, full_name, email, metadata
    Column("seq_no", BigInteger, nullable=False, default=1),
)

roles = Table(
    "roles",
    metadata,
    Column("name", SafeString(512), primary_key=True),
    Column("doc", SafeText, nullable=False),  # the role descriptor, as given
    Column("seq_no", BigInteger, nullable=False, default=1),
)

app_privileges = Table(
    "app_privileges",
    metadata,
    Column("application", SafeString(512), primary_key=True),
    Column("name", SafeString(512), primary_key=True),
    Column("doc", SafeText, nullable=False),
    Column("seq_no", BigInteger, nullable=False, default=1),
)

role_mappings = Table(
    "role_mappings",
    metadata,
    Column("name", SafeString(512), primary_key=True),
    Column("doc", SafeText, nullable=False),
    Column("seq_no", BigInteger, nullable=False, default=1),
)

user_profiles = Table(
    "user_profiles",
    metadata,
    Column("uid", SafeString(128), primary_key=True),
    Column("username", SafeString(512), nullable=False),
    Column("realm", SafeString(256), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("doc", SafeText, nullable=False),  # user snapshot, labels, data, last_synchronized
    Column("seq_no", BigInteger, nullable=False, default=1),
)
Index("user_profiles_user", user_profiles.c.username, user_profiles.c.realm)

service_tokens = Table(
    "service_tokens",
    metadata,
    Column("id", SafeString(512), primary_key=True),  # namespace/service/name
    Column("account", SafeString(256), nullable=False),
    Column("name", SafeString(256), nullable=False),
    Column("hash", SafeText, nullable=False),
    Column("creation", BigInteger, nullable=False),
)
Index("service_tokens_account", service_tokens.c.account)

# Facts about the cluster itself, such as its uuid.
properties = Table(
    "properties",
    metadata,
    Column("name", SafeString(128), primary_key=True),
    Column("value", SafeText, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", SafeString(32), primary_key=True),
    Column("name", SafeString(512), nullable=True),
    Column("type", SafeString(16), nullable=False),
    Column("creation", BigInteger, nullable=False),
    Column("expiration", BigInteger, nullable=True),
    Column("invalidated", Boolean, nullable=False, default=False),
    Column("invalidation", BigInteger, nullable=True),
    Column("username", SafeString(512), nullable=False),  # creator.principal
    Column("realm", SafeString(256), nullable=False),  # creator.realm
    Column("realm_type", SafeString(64), nullable=False),
    Column("hash", SafeText, nullable=False),
    Column("metadata", SafeJSON(none_as_null=True), nullable=True),
    Column("doc", SafeText, nullable=False),  # role descriptors, limited_by, creator details, version
    Column("last_used", BigInteger, nullable=True),
    Column("seq_no", BigInteger, nullable=False, default=1),
    # Whether metadata.managed holds the keyword "true" (alone or in an array): the console's "managed"
    # filter, kept by the repository from the metadata it writes (apikeys/backends/sql.py). Migration v14.
    Column("managed", Boolean, nullable=False, default=False, server_default=false()),
)
# The list a key-management UI sends: live keys of a type, newest first.
Index("api_keys_live_by_creation", api_keys.c.invalidated, api_keys.c.type, api_keys.c.creation)
Index("api_keys_creation", api_keys.c.creation)
# A console page walks keys in creation order, testing each one's state until the page is full
# (apikeys/backends/plans/sql.py): with the state in the index, a key that does not match costs no read
# of its row ("expired, newest first" walks ~100,000 recent keys). Migration v13.
Index(
    "api_keys_creation_state",
    api_keys.c.creation,
    api_keys.c.invalidated,
    api_keys.c.type,
    api_keys.c.expiration,
    api_keys.c.last_used,
)
# Covers the count of live keys not yet expired without reading the table.
Index("api_keys_live_by_expiration", api_keys.c.invalidated, api_keys.c.type, api_keys.c.expiration)
Index("api_keys_expiration", api_keys.c.expiration)
# An owner's keys newest first (a manage_own_api_key user's list): creation added by migration v12.
Index("api_keys_owner", api_keys.c.username, api_keys.c.realm, api_keys.c.creation)
Index("api_keys_name", api_keys.c.name)
Index("api_keys_last_used", api_keys.c.last_used)
Index("api_keys_invalidation", api_keys.c.invalidation)
# The managed keys in creation order with their state (as api_keys_creation_state): their count and a
# page of them read only their entries, not every key's metadata. Migration v14.
Index(
    "api_keys_managed",
    api_keys.c.creation,
    api_keys.c.invalidated,
    api_keys.c.type,
    api_keys.c.expiration,
    api_keys.c.last_used,
    sqlite_where=api_keys.c.managed == true(),
    postgresql_where=api_keys.c.managed == true(),
)
# PostgreSQL also has api_keys_name_pattern, name in byte order (migration v12): the database's
# collation rules out an index range for a prefix (LIKE 'abc%') on api_keys_name.

# Key counts, kept by triggers on api_keys in the same transaction as every insert, update and
# delete (migration v12; apikeys/backends/counts/ reads them). Totals and terms aggregations sum
# these few rows instead of counting a million keys. On SQLite a row per group, updated in place
# (one writer; the migration keys the table by the group); on PostgreSQL writers append +1/-1
# rows, so concurrent writers never wait on a shared counter row, and the triggers fold the rows
# of a group together now and then.
api_key_counts = Table(
    "api_key_counts",
    metadata,
    Column("username", SafeString(512), nullable=False),
    Column("realm", SafeString(256), nullable=False),
    Column("type", SafeString(16), nullable=False),
    Column("invalidated", Boolean, nullable=False),
    Column("n", BigInteger, nullable=False),
)
# Counts by expiration bucket (expiration >> EXPIRY_BUCKET_BITS, NEVER_EXPIRES for none): whether
# keys are expired at a time is summed from whole buckets plus an index range over the one bucket
# holding that time.
api_key_expiry_counts = Table(
    "api_key_expiry_counts",
    metadata,
    Column("type", SafeString(16), nullable=False),
    Column("invalidated", Boolean, nullable=False),
    Column("bucket", BigInteger, nullable=False),
    Column("n", BigInteger, nullable=False),
)
EXPIRY_BUCKET_BITS = 28  # about 3.1 days of milliseconds
NEVER_EXPIRES = 1 << 40  # above every bucket of a 64-bit time

tokens = Table(
    "tokens",
    metadata,
    Column("id", SafeString(64), primary_key=True),
    Column("access_hash", SafeString(128), nullable=False, unique=True),
    Column("refresh_hash", SafeString(128), nullable=True, unique=True),
    Column("username", SafeString(512), nullable=False),
    Column("realm", SafeString(256), nullable=False),
    Column("doc", SafeText, nullable=False),  # the authentication the token stands for
    Column("creation", BigInteger, nullable=False),
    Column("expiration", BigInteger, nullable=False),
    Column("invalidated", Boolean, nullable=False, default=False),
    Column("refreshed", Boolean, nullable=False, default=False),
)
Index("tokens_owner", tokens.c.username, tokens.c.realm)
Index("tokens_expiration", tokens.c.expiration)

connectors = Table(
    "connectors",
    metadata,
    Column("id", SafeString(512), primary_key=True),
    Column("index_name", SafeString(512), nullable=True),
    Column("name", SafeText, nullable=True),
    Column("service_type", SafeText, nullable=True),
    Column("description", SafeText, nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("doc", SafeText, nullable=False),  # the connector document, as Elasticsearch stores it
    Column("seq_no", BigInteger, nullable=False, default=1),
)
# One live connector per index: the rule Elasticsearch checks, kept by the database under concurrency.
Index(
    "connectors_live_index_name",
    connectors.c.index_name,
    unique=True,
    sqlite_where=connectors.c.deleted == false(),
    postgresql_where=connectors.c.deleted == false(),
)
# A hash index on PostgreSQL: a btree entry cannot exceed ~2700 bytes, and a service type may be longer.
Index("connectors_service_type", connectors.c.service_type, postgresql_using="hash")

sync_jobs = Table(
    "sync_jobs",
    metadata,
    Column("id", SafeString(64), primary_key=True),
    Column("connector_id", SafeString(512), nullable=False),
    Column("status", SafeString(32), nullable=False),
    Column("job_type", SafeString(32), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("doc", SafeText, nullable=False),
    Column("seq_no", BigInteger, nullable=False, default=1),
)
Index("sync_jobs_connector", sync_jobs.c.connector_id, sync_jobs.c.created_ns)
Index("sync_jobs_created", sync_jobs.c.created_ns)

connector_secrets = Table(
    "connector_secrets",
    metadata,
    Column("id", SafeString(512), primary_key=True),
    Column("sealed", SafeText, nullable=False),  # AES-GCM under a key kept outside the database
)

# Content indices: settings, mappings and aliases as created, and the last sequence number given to
# one of their writes (every document write takes the next one in the same transaction).
indices = Table(
    "indices",
    metadata,
    Column("name", SafeString(255), primary_key=True),
    Column("uuid", SafeString(32), nullable=False),
    Column("creation", BigInteger, nullable=False),
    Column("doc", SafeText, nullable=False),  # {"settings", "mappings", "aliases"}
    Column("seq_no", BigInteger, nullable=False, default=-1),
    # The last sequence number searches see (indices/refresh.py); added by migration v10.
    Column("refreshed_seq_no", BigInteger, nullable=False, default=-1, server_default="-1"),
)

documents = Table(
    "documents",
    metadata,
    Column("index_name", SafeString(255), primary_key=True),
    Column("id", SafeString(512), primary_key=True),
    Column("seq_no", BigInteger, nullable=False),
    Column("primary_term", BigInteger, nullable=False, default=1),
    Column("version", BigInteger, nullable=False),
    Column("source", SafeText, nullable=False),  # the document's _source, as JSON text
)
# Scans in index order (count, search over _source) and the sequence number of a write.
Index("documents_seq_no", documents.c.index_name, documents.c.seq_no)

# A document as searches still see it, kept when it is rewritten or deleted after the index's last
# refresh and dropped by the next one (indices whose writes are not visible at once, refresh.py).
document_snapshots = Table(
    "document_snapshots",
    metadata,
    Column("index_name", SafeString(255), primary_key=True),
    Column("id", SafeString(512), primary_key=True),
    Column("seq_no", BigInteger, nullable=False),
    Column("primary_term", BigInteger, nullable=False, default=1),
    Column("version", BigInteger, nullable=False),
    Column("source", SafeText, nullable=False),
)

# -- content indices: term rows for searches pushed down to the store (keyplane/indices/terms.py) -----------
# One row per (field path, leaf value) of the current version of each document, written in the same
# transaction as the document; kind ``i`` with an empty field marks a document searches evaluate in memory.
content_terms = Table(
    "content_terms",
    metadata,
    Column("index_name", SafeString(255), primary_key=True),
    # The generation of the document's sequence number on SQLite, so that a write's rows are appended
    # (backends/terms/sql.py); 0 on PostgreSQL, whose statements leave it to the default.
    Column("gen", BigInteger, primary_key=True, autoincrement=False, default=0, server_default="0"),
    # field, separator, kind, value (terms.py); byte order on PostgreSQL too, as Python compares strings (ranges).
    Column("term", Text().with_variant(Text(collation="C"), "postgresql"), primary_key=True),
    # The document's sequence number (migration v18), so that a term's first matches in index order
    # come from its rows alone; -1 only in rows restored from a backup taken before v18 (the step numbers them).
    Column("seq_no", BigInteger, primary_key=True, autoincrement=False, server_default="-1"),
    Column("id", SafeString(512), primary_key=True),
    Column("num", Double, nullable=True),  # numbers and booleans (1, 0), for ranges
    sqlite_with_rowid=False,
)
