"""Tests of the write batcher against real history databases."""
