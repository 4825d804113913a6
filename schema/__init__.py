"""The GraphQL schema: Strawberry types and the resolver functions (operations.py), error
codes, request limits, the shortcuts of the hot operations (plans.py, fast_path.py,
fast_subscriptions.py), and the exported SDL (`schema/schema.graphql`) that must match the
code and honour the contract.

May import `resolvers` (the service the resolvers call) and the values of `store`
(`store.models`, `store.boards`), never `server`.
"""
