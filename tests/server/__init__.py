"""Tests of server/: the HTTP and WebSocket app, transport rules, the CLI and real processes."""
