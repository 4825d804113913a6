"""Settings checks that span several variables."""

from __future__ import annotations

import pytest

from server.settings import Settings


def test_a_read_replica_needs_a_mysql_primary() -> None:
    with pytest.raises(ValueError, match="READ_URL"):
        Settings(_env_file=None, database_read_url="mysql+aiomysql://root@replica:3306/test")
    settings = Settings(
        _env_file=None,
        database_url="mysql+aiomysql://root@primary:3306/test",
        database_read_url="mysql+aiomysql://root@replica:3306/test",
    )
    assert settings.database_read_url.startswith("mysql")


def test_a_catch_up_flush_is_at_least_a_normal_one() -> None:
    with pytest.raises(ValueError, match="FLUSH_CATCH_UP_EVENTS"):
        Settings(_env_file=None, flush_max_events=1000, flush_catch_up_events=999)
    settings = Settings(_env_file=None, flush_max_events=1000, flush_catch_up_events=1000)
    assert settings.flush_catch_up_events == 1000
