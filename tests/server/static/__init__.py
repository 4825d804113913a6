"""Tests of server/static/ in a real browser: the live overlay and GraphiQL."""
