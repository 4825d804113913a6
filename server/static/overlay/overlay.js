// Live leaderboard overlay: subscribes to topPlayersChanged over graphql-transport-ws (the
// vendored graphql-ws client) and animates rank changes (FLIP: rows are reordered at once,
// then slid from where they were to where they are).
//
// Every piece of data (usernames, board names, error messages) reaches the page through
// textContent or dataset, never as HTML.
"use strict";

(function () {
  const THEMES = ["dark", "light", "transparent"];
  const DEFAULT_THEME = "dark";
  const DEFAULT_LIMIT = 10;
  const MAX_LIMIT = Number(document.documentElement.dataset.maxLimit) || 100;
  // Longest wait between two reconnection attempts, and before subscribing again after an
  // error (an unknown board may be configured later; storage may come back).
  const MAX_RETRY_MILLISECONDS = 10000;
  const ERROR_RETRY_MILLISECONDS = 15000;
  // After the server ended a subscription normally (it never should while the board exists).
  const RESUBSCRIBE_MILLISECONDS = 1000;
  // A ping unanswered this long means a half-open socket: close it so the client reconnects.
  const PING_INTERVAL_MILLISECONDS = 10000;
  const PONG_TIMEOUT_MILLISECONDS = 5000;
  // With ?period=, that period is re-read when the board changes, at most this often.
  const PERIOD_REFRESH_MILLISECONDS = 1000;

  const TOP_CHANGED = `subscription OverlayTop($board: ID!, $limit: Int!) {
  topPlayersChanged(board: $board, limit: $limit) { username displayName score rank }
}`;
  const TOP_IN_PERIOD = `query OverlayPeriod($board: ID!, $limit: Int!, $period: String!) {
  topPlayers(board: $board, limit: $limit, period: $period) { username displayName score rank }
}`;

  const elements = {
    title: document.getElementById("title"),
    status: document.getElementById("status"),
    statusText: document.getElementById("status-text"),
    error: document.getElementById("error"),
    rows: document.getElementById("rows"),
    empty: document.getElementById("empty"),
  };
  const scoreFormat = new Intl.NumberFormat();
  // ASC boards rank race times and the like, lowest first: printed as submitted (a lap of
  // 61250 ms is not "61,250"); DESC boards' points get the reader's digit grouping.
  const ascending = document.documentElement.dataset.sortOrder === "asc";
  const formatScore = (score) => (ascending ? String(score) : scoreFormat.format(score));

  function readOptions() {
    const parameters = new URLSearchParams(window.location.search);
    const segments = window.location.pathname.split("/");
    let board = segments[segments.length - 1] || "global";
    try {
      board = decodeURIComponent(board);
    } catch {
      // A malformed escape: send it as it is, the server names it in its error.
    }
    let limit = Number.parseInt(parameters.get("limit") || "", 10);
    if (!Number.isFinite(limit)) {
      limit = DEFAULT_LIMIT;
    }
    limit = Math.min(Math.max(limit, 1), MAX_LIMIT);
    const theme = parameters.get("theme");
    return {
      board,
      limit,
      theme: THEMES.includes(theme) ? theme : DEFAULT_THEME,
      highlight: parameters.get("highlight") || null,
      period: parameters.get("period") || null,
    };
  }

  function graphqlSocketUrl() {
    // Relative to the page, so a reverse proxy may serve the service under a path prefix.
    const url = new URL("../graphql", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.search = "";
    url.hash = "";
    return url.toString();
  }

  // --- status and errors -------------------------------------------------------------------

  const status = { connection: "connecting", problem: false };

  function showStatus() {
    const state = status.problem ? "error" : status.connection;
    elements.status.dataset.state = state;
    elements.statusText.textContent = state;
  }

  function setConnection(connection) {
    status.connection = connection;
    showStatus();
  }

  function describeProblem(problem) {
    if (Array.isArray(problem)) {
      return problem
        .map((error) => {
          const code = error && error.extensions && error.extensions.code;
          const message = (error && error.message) || String(error);
          return code ? `${message} (${code})` : message;
        })
        .join("\n");
    }
    if (problem && typeof problem.code === "number") {
      const reason = problem.reason ? `: ${problem.reason}` : "";
      return `connection closed (${problem.code}${reason})`;
    }
    if (problem instanceof Error) {
      return problem.message;
    }
    return "cannot reach the leaderboard service";
  }

  function showProblem(problem) {
    status.problem = true;
    elements.error.textContent = describeProblem(problem);
    elements.error.hidden = false;
    showStatus();
  }

  function clearProblem() {
    status.problem = false;
    elements.error.hidden = true;
    elements.error.textContent = "";
    showStatus();
  }

  // --- rows and the FLIP animation ---------------------------------------------------------

  const rowsByName = new Map();

  function createRow(username, highlight) {
    const row = document.createElement("li");
    row.className = "overlay-row";
    row.dataset.username = username;
    const rank = document.createElement("span");
    rank.className = "overlay-rank";
    const name = document.createElement("span");
    name.className = "overlay-name";
    name.textContent = username;
    const score = document.createElement("span");
    score.className = "overlay-score";
    row.append(rank, name, score);
    if (username === highlight) {
      row.classList.add("is-highlighted");
      row.setAttribute("aria-current", "true");
    }
    return row;
  }

  function movementOf(row, player) {
    if (row.dataset.rank === undefined) {
      return null;
    }
    const previousRank = Number(row.dataset.rank);
    if (player.rank < previousRank) {
      return "up";
    }
    if (player.rank > previousRank) {
      return "down";
    }
    return Number(row.dataset.score) === player.score ? null : "score";
  }

  function render(players, highlight) {
    const list = elements.rows;
    // First: where every row is on screen now (mid-animation rows included).
    const before = new Map();
    for (const [username, row] of rowsByName) {
      before.set(username, row.getBoundingClientRect().top);
    }

    const present = new Set();
    const moved = [];
    players.forEach((player, index) => {
      let row = rowsByName.get(player.username);
      if (!row) {
        row = createRow(player.username, highlight);
        rowsByName.set(player.username, row);
      }
      const movement = movementOf(row, player);
      if (movement) {
        moved.push([row, movement]);
      }
      row.dataset.rank = String(player.rank);
      row.dataset.score = String(player.score);
      row.children[0].textContent = String(player.rank);
      // The display name is the player's own text: shown as text, never parsed as HTML.
      row.children[1].textContent = player.displayName || player.username;
      row.children[2].textContent = formatScore(player.score);
      if (list.children[index] !== row) {
        list.insertBefore(row, list.children[index] || null);
      }
      present.add(player.username);
    });
    for (const [username, row] of rowsByName) {
      if (!present.has(username)) {
        row.remove();
        rowsByName.delete(username);
      }
    }
    elements.empty.hidden = players.length > 0;

    // Last and Invert: put each row back where it was, without a transition.
    for (const [username, row] of rowsByName) {
      const previousTop = before.get(username);
      if (previousTop === undefined) {
        row.classList.add("is-entering");
        continue;
      }
      const offset = previousTop - row.getBoundingClientRect().top;
      if (offset !== 0) {
        row.style.transition = "none";
        row.style.transform = `translateY(${offset}px)`;
      }
    }
    for (const [row] of moved) {
      row.removeAttribute("data-movement");
    }
    // Reading layout commits the inverted positions before the transition starts.
    void list.offsetHeight;
    // Play: let every row slide to its place.
    for (const row of rowsByName.values()) {
      row.style.transition = "";
      row.style.transform = "";
      row.classList.remove("is-entering");
    }
    for (const [row, movement] of moved) {
      row.dataset.movement = movement;
    }
  }

  // --- the GraphQL client ------------------------------------------------------------------

  function retryWait(retries) {
    const backoff = Math.min(500 * 2 ** retries, MAX_RETRY_MILLISECONDS);
    return new Promise((resolve) => setTimeout(resolve, backoff + Math.random() * 500));
  }

  function connect() {
    let activeSocket = null;
    let pongTimer = null;
    return graphqlWs.createClient({
      url: graphqlSocketUrl(),
      lazy: false,
      retryAttempts: Infinity,
      shouldRetry: () => true,
      retryWait,
      keepAlive: PING_INTERVAL_MILLISECONDS,
      onNonLazyError: showProblem,
      on: {
        connecting: (isRetry) => setConnection(isRetry ? "reconnecting" : "connecting"),
        opened: (socket) => {
          activeSocket = socket;
        },
        connected: () => setConnection("live"),
        closed: () => {
          clearTimeout(pongTimer);
          activeSocket = null;
          setConnection("reconnecting");
        },
        ping: (received) => {
          if (!received) {
            pongTimer = setTimeout(() => {
              if (activeSocket && activeSocket.readyState === WebSocket.OPEN) {
                activeSocket.close(4408, "pong timeout");
              }
            }, PONG_TIMEOUT_MILLISECONDS);
          }
        },
        pong: (received) => {
          if (received) {
            clearTimeout(pongTimer);
          }
        },
      },
    });
  }

  // Runs one operation again and again: after an error or a completion (the server ending
  // it, e.g. on shutdown) it starts over once the connection allows. `settles`: whether its
  // data means the page is right again (not when it only triggers another read).
  function keepRunning(client, request, onData, settles) {
    let failed = false;
    const start = () => {
      failed = false;
      client.subscribe(request, {
        next: (result) => {
          if (result.errors && result.errors.length) {
            failed = true;
            showProblem(result.errors);
            return;
          }
          if (settles) {
            clearProblem();
          }
          onData(result.data);
        },
        error: (problem) => {
          failed = true;
          showProblem(problem);
          setTimeout(start, ERROR_RETRY_MILLISECONDS);
        },
        complete: () => {
          setTimeout(start, failed ? ERROR_RETRY_MILLISECONDS : RESUBSCRIBE_MILLISECONDS);
        },
      });
    };
    start();
  }

  // A finished or pinned period: re-read it whenever the board's live top list moves.
  function periodReader(client, variables, show) {
    let running = false;
    let again = false;
    const read = () => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      client.subscribe(
        { query: TOP_IN_PERIOD, variables },
        {
          next: (result) => {
            if (result.errors && result.errors.length) {
              showProblem(result.errors);
              return;
            }
            clearProblem();
            show(result.data.topPlayers);
          },
          error: (problem) => {
            showProblem(problem);
            finish();
          },
          complete: () => finish(),
        },
      );
    };
    const finish = () => {
      setTimeout(() => {
        running = false;
        if (again) {
          again = false;
          read();
        }
      }, PERIOD_REFRESH_MILLISECONDS);
    };
    return read;
  }

  function start() {
    const options = readOptions();
    document.documentElement.classList.add(`theme-${options.theme}`);
    const suffix = options.period ? ` · ${options.period}` : "";
    elements.title.textContent = `${options.board} · top ${options.limit}${suffix}`;
    document.title = `${options.board} leaderboard`;
    showStatus();

    const client = connect();
    const show = (players) => render(players, options.highlight);
    const live = { board: options.board, limit: options.limit };
    if (options.period) {
      const read = periodReader(client, { ...live, period: options.period }, show);
      keepRunning(client, { query: TOP_CHANGED, variables: live }, read, false);
    } else {
      keepRunning(
        client,
        { query: TOP_CHANGED, variables: live },
        (data) => show(data.topPlayersChanged),
        true,
      );
    }
  }

  start();
})();
