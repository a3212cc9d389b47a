"""Keyplane: an Elasticsearch-compatible server for security API keys and connectors."""

__version__ = "0.1.0"

# The Elasticsearch REST API level Keyplane implements (reported as version.number).
ES_VERSION = "9.5.0"
