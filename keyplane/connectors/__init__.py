"""Connectors, their sync jobs and connector secrets (the ``_connector`` APIs)."""
