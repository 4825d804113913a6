"""The end-to-end fixtures of tests/integration: real `leaderboard serve` on Redis + MariaDB."""

from __future__ import annotations

from tests.integration.conftest import redis_mysql_environment, service_process

__all__ = ["redis_mysql_environment", "service_process"]
