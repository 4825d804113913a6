// GraphiQL for the leaderboard API, from the vendored React and GraphiQL builds. It opens
// with one tab per kind of operation; subscriptions run over WebSocket
// (graphql-transport-ws) on the same /graphql endpoint.
"use strict";

(function () {
  const STANDINGS = `# Queries need no token.
# Run with Ctrl-Enter or the play button.
query Standings(
  $board: ID! = "global"
  $username: String! = "ana"
) {
  leaderboards { id reset currentPeriod playerCount }
  topPlayers(board: $board, limit: 10) {
    rank username score
  }
  player(username: $username, board: $board) {
    rank username score
  }
  neighborhood(username: $username, board: $board, radius: 2) {
    rank username score
  }
}
`;

  const TOP_PLAYERS_LIVE = `# The top list now, then the new list each
# time it changes (over WebSocket). Send a
# score from the AddScore tab to see it move.
subscription TopPlayersLive($board: ID! = "global") {
  topPlayersChanged(board: $board, limit: 10) {
    rank username score
  }
}
`;

  const RANK_LIVE = `# One player's standing now, then every
# change of it (over WebSocket).
subscription RankLive(
  $username: String! = "ana"
  $board: ID! = "global"
) {
  rankChanged(username: $username, board: $board) {
    username board period score rank previousRank
  }
}
`;

  const ADD_SCORE = `# Mutations need the write token (printed by
# \`leaderboard serve\`, or LEADERBOARD_WRITE_TOKEN):
# put it in the Headers tab below.
mutation AddScore(
  $username: String! = "ana"
  $delta: Int! = 50
  $board: ID! = "global"
) {
  incrementScore(username: $username, delta: $delta, board: $board) {
    username board period score rank applied
  }
}
`;

  const TOKEN_HEADERS = `{
  "X-Internal-Token": "paste the write token here"
}`;

  const url = window.location.href.split(/[?#]/)[0];
  const socketUrl = new URL(url);
  socketUrl.protocol = socketUrl.protocol === "https:" ? "wss:" : "ws:";

  const fetcher = GraphiQL.createFetcher({
    url,
    subscriptionUrl: socketUrl.toString(),
  });

  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultQuery: STANDINGS,
      defaultTabs: [
        { query: STANDINGS },
        { query: TOP_PLAYERS_LIVE },
        { query: RANK_LIVE },
        { query: ADD_SCORE, headers: TOKEN_HEADERS },
      ],
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      // The write token stays out of the browser's storage.
      shouldPersistHeaders: false,
      inputValueDeprecation: true,
    }),
  );
})();
