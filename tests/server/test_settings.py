"""Settings checks that span several variables."""

from __future__ import annotations

import pytest

from server.settings import Settings

pytestmark = pytest.mark.unit


def test_a_read_replica_needs_a_mysql_primary() -> None:
    with pytest.raises(ValueError, match="READ_URL"):
        Settings(_env_file=None, database_read_url="mysql+aiomysql://root@replica:3306/test")
    settings = Settings(
        _env_file=None,
        database_url="mysql+aiomysql://root@primary:3306/test",
        database_read_url="mysql+aiomysql://root@replica:3306/test",
    )
    assert settings.database_read_url.startswith("mysql")


def test_event_retention_is_unset_by_default_and_outlives_redis_retention() -> None:
    assert Settings(_env_file=None).event_retention_days is None
    with pytest.raises(ValueError, match="EVENT_RETENTION_DAYS"):
        Settings(_env_file=None, event_retention_days=30)  # Redis keeps 35
    assert Settings(_env_file=None, event_retention_days=35).event_retention_days == 35
    assert Settings(_env_file=None, event_retention_days=1, retention_days=0).event_retention_days
