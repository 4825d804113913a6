"""Performance benchmarks of the leaderboard service (`make bench`, or `python -m benchmarks`).

See docs/performance.md for what each scenario does, the targets, and the latest results.
"""
