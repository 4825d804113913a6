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
