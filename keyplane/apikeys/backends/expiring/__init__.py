"""Live keys that expire within a window, soonest first (``GET /_keyplane/api_key/_expiring``)."""
