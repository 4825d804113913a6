// Subscribes to rankChanged with the reference graphql-ws client and prints what happens
// as JSON lines on stdout, for tests/server/test_reference_client.py:
//   {"event":"connected"}                       the server acknowledged connection_init
//   {"event":"next","payload":{"data":...}}     one result of the subscription
//   {"event":"error","error":...}               the subscription failed (exit code 1)
//   {"event":"complete"}                        the server ended the subscription
// It exits 0 after --count results. It also exits when stdin closes, so a test that dies
// cannot leave it running.
//
//   node subscribe.mjs --url ws://127.0.0.1:8000/graphql --username ana [--board global] [--count 2]
import { parseArgs } from "node:util";

import { createClient } from "graphql-ws";
import WebSocket from "ws";

const RANK_CHANGED = `
subscription($username: String!, $board: ID!) {
  rankChanged(username: $username, board: $board) { username board period score rank previousRank }
}`;

const { values: options } = parseArgs({
  options: {
    url: { type: "string" },
    username: { type: "string" },
    board: { type: "string", default: "global" },
    count: { type: "string", default: "2" },
  },
});
if (!options.url || !options.username) {
  process.stderr.write("usage: subscribe.mjs --url WS_URL --username NAME [--board B] [--count N]\n");
  process.exit(2);
}
const wanted = Number.parseInt(options.count, 10);

function emit(record) {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

function describe(error) {
  // A close event, an Error, or the GraphQL errors array: keep what JSON can carry.
  if (Array.isArray(error)) return error;
  if (error instanceof Error) return { message: error.message };
  if (error && typeof error === "object" && "code" in error) {
    return { closeCode: error.code, reason: String(error.reason ?? "") };
  }
  return { message: String(error) };
}

const client = createClient({
  url: options.url,
  webSocketImpl: WebSocket,
  // A test wants to see a failure, not a client that quietly reconnects.
  retryAttempts: 0,
  lazy: false,
  onNonLazyError: (error) => {
    emit({ event: "error", error: describe(error) });
    process.exit(1);
  },
  on: { connected: () => emit({ event: "connected" }) },
});

let received = 0;
let finished = false;

async function finish(code) {
  if (finished) return;
  finished = true;
  await client.dispose();
  process.exit(code);
}

client.subscribe(
  {
    query: RANK_CHANGED,
    variables: { username: options.username, board: options.board },
  },
  {
    next: (result) => {
      emit({ event: "next", payload: result });
      received += 1;
      if (received >= wanted) void finish(0);
    },
    error: (error) => {
      emit({ event: "error", error: describe(error) });
      void finish(1);
    },
    complete: () => {
      emit({ event: "complete" });
      void finish(received >= wanted ? 0 : 1);
    },
  },
);

process.stdin.resume();
process.stdin.on("end", () => void finish(3));
