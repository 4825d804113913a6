"""The service behind the GraphQL resolvers: validation, the token check, writes, reads,
recovery on demand, live updates. The resolver functions themselves (what a GraphQL field
calls) are in schema/operations.py; to add a field, start there (docs/architecture.md,
"Where things live").

- `service.py`: `LeaderboardService`, what every resolver calls; `write_stamps.py`: what it
  adds to a write (generated event ids, writer call numbers, the history event)
- `validation.py`: the contract's input rules; `errors.py`: the errors a client can see
- `auth.py`: the write token check (constant time)
- `live.py`, `live_state.py`, `mailbox.py`: the live fan-out of the subscriptions
- `seasons.py`: the end of each period (watermarks, finalizer, periodEnded, past reads);
  `final_periods.py`: one final period's reads from its frozen standings
- `instances.py`: this process in the instance registry (heartbeat, rebuild fences,
  reconciling after dead instances)

May import `store` and `batcher`, never `schema` or `server`. Holds no Redis command
or SQL statement: those live in `store`.
"""
