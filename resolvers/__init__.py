"""Use cases, one module per capability. Plain async functions; no GraphQL here."""
