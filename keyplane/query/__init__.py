"""The query engine: Elasticsearch's query DSL parsed once into a typed tree, evaluated anywhere.

* ``fields`` — an index's field map: which names a query may use, their types, aliases.
* ``tree`` — the query clauses and sort keys, as dataclasses.
* ``aggs`` — aggregation requests and the typed results storage returns for them.
* ``parser`` — the one parser from DSL JSON to the tree, given an index's field map and its API's rules.
* ``memory`` — evaluation over JSON documents held in memory.
* ``backends/sql.py`` — evaluation as SQLAlchemy Core conditions, sorts and GROUP BY aggregations.
* ``dates`` — date values and date math.

Rendering aggregation results as Elasticsearch's JSON happens at the edge (``keyplane.api.aggregations``).
"""
