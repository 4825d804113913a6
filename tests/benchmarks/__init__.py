"""Tests of benchmarks/ logic (scenario definitions), not the benchmarks themselves."""
