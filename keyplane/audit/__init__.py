"""The security audit log, after Elasticsearch's: one JSON line per security event.

``events`` names the event types and checks the include/exclude settings, ``trail`` builds the
events (who, what, from where), ``changes`` describes security changes from an allow-list of request
fields, and ``writer`` appends the lines from a thread, behind a bounded buffer.
"""
