"""The GraphQL contract: types, inputs, errors, permissions and the root schema."""
