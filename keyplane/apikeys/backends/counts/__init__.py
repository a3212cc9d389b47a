"""Key totals and terms aggregations from the count tables that triggers keep (migration v12)."""
