"""Prometheus metrics: counted on the request path in plain Python numbers, rendered at scrape time.

``recorder`` holds the counts the request path, the store and the background jobs update (a dict
lookup and a few integer additions each, no lock: they run on the event loop); ``state`` reads the
aggregates of stored state (keys by state, connectors and sync jobs by status) when scraped, cached
for a few seconds; ``exposition`` turns both into prometheus_client's metric families on a registry
of its own.
"""
