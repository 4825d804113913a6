"""The GraphQL schema: Strawberry types and operations, error codes, request limits, and the
exported SDL (`schema/schema.graphql`) that must match the code and honour the contract.

May import `resolvers` (and through it the values of `store`), never `server`.
"""
