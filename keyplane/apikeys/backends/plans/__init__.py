"""How a page of keys is read: the plan chosen for a query from its exact total (``sql.py``)."""
