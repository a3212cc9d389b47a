"""Online backups of the store and their restore, in one file format for SQLite and PostgreSQL.

- ``fileformat``: the file (gzip'd JSON lines: a header, one section per table, a checksummed
  trailer) and the encoding of each column type;
- ``tables``: which tables a backup holds, and how they are reached on each store;
- ``dump``: a backup taken from one snapshot while the server runs and writes;
- ``load``: the restore, checked whole before anything is written, in one transaction;
- ``progress``: the rate-limited progress lines both print.
"""
