"""API keys: creation, grant, retrieval, query, update, invalidation and authentication."""
