"""MongoDB documents and intention-named queries. No GraphQL, no rules."""
