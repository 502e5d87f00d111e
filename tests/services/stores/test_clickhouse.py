"""Version-specific settings go only to the ClickHouse servers that know them."""

from __future__ import annotations

from services.stores.clickhouse import ClickHouse, parse_version, settings_for


def test_versions_parse_to_comparable_tuples():
    assert parse_version("18.16.1") == (18, 16, 1)
    assert parse_version("26.9.2.1") == (26, 9, 2, 1)


def test_low_cardinality_setting_only_for_old_servers():
    assert settings_for((18, 16, 1)) == {"allow_experimental_low_cardinality_type": 1}
    # A current server rejects the setting as unknown (error 115).
    assert settings_for((26, 9, 2, 1)) == {}
    assert settings_for((19, 1)) == {}


async def test_the_test_server_takes_the_settings_its_version_needs(system):
    ch = ClickHouse.from_url(system.settings.clickhouse_url, pool_size=1)
    try:
        version = await ch.server_version()
        await ch.command("SELECT 1", settings_for(version))
    finally:
        ch.close()
