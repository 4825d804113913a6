"""Real client libraries against a real `leaderboard serve`: graphql-ws (npm) and gql."""
