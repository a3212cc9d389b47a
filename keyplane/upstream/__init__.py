"""Forwarding content-index requests to an upstream Elasticsearch or OpenSearch cluster.

Keyplane keeps the security and connector APIs and the connector system indices; with an upstream set,
the content indices live in the upstream cluster. Each forwarded request has been authenticated by
Keyplane and is authorized here against Keyplane's roles before it leaves (:mod:`keyplane.upstream.forward`);
the upstream only ever sees Keyplane's own credentials (:mod:`keyplane.upstream.client`).
"""
