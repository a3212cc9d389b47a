"""Content indices: their names, settings and mappings, and the documents they hold.

* ``core`` — the rules: index names, settings as Elasticsearch normalises them, document versions
  and sequence numbers, the update request's merge, noop and upsert rules, source filtering.
* ``fields`` — an index's fields as the query engine sees them, from its mappings.
* ``service`` — one operation per API, orchestrating the rules over a repository.
* ``backends`` — storage behind an interface (``base.py``), for SQLite and PostgreSQL (``sql.py``).
"""
