"""Service addresses listing several copies: one round_robin channel spreads calls over them,
calls go on when a copy stops, and the gateway's health check counts a service up while any
copy serves."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.channels import Backends
from gateway.health import check_backends
from services.config import Settings
from services.grpc_server.channels import addresses, service_channel, target
from tests.ports import free_port
from tests.services.grpc_server.copies import check, start_copy


def test_targets_of_addresses() -> None:
    assert target("127.0.0.1:50051") == "ipv4:127.0.0.1:50051"
    assert target(" 10.0.0.1:1, 10.0.0.2:2 ,") == "ipv4:10.0.0.1:1,10.0.0.2:2"
    assert target("[::1]:5,[::2]:6") == "ipv6:[::1]:5,[::2]:6"
    assert target("query.internal:50051") == "dns:///query.internal:50051"
    assert target("dns:///query:50051") == "dns:///query:50051"
    assert addresses("a:1,,b:2") == ["a:1", "b:2"]


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("a.internal:1,b.internal:1", "IP addresses only"),
        ("127.0.0.1:1,[::1]:1", "mixes IPv4 and IPv6"),
        ("127.0.0.1", "not host:port"),
        (" , ", "no address"),
    ],
)
def test_unusable_addresses_are_refused_clearly(address: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        target(address)


def test_listen_address() -> None:
    listed = Settings(query_addr="127.0.0.1:1,127.0.0.1:2", grpc_listen_addr="")
    with pytest.raises(ValueError, match="set GRPC_LISTEN_ADDR"):
        listed.grpc_listen("query")
    assert replace(listed, grpc_listen_addr="0.0.0.0:2").grpc_listen("query") == "0.0.0.0:2"
    assert Settings(query_addr="127.0.0.1:7", grpc_listen_addr="").grpc_listen("query") == (
        "127.0.0.1:7"
    )


async def test_calls_spread_over_copies_and_go_on_when_one_stops() -> None:
    first, second = await start_copy(), await start_copy()
    settings = Settings(query_addr=f"{first.address},{second.address}", grpc_tls_ca="")
    channel = service_channel(settings, "query")
    try:
        for _ in range(20):
            assert await check(channel) == "SERVING"
        assert first.calls >= 5 and second.calls >= 5, (first.calls, second.calls)
        await first.stop()
        served = second.calls
        for _ in range(20):
            assert await check(channel) == "SERVING"
        assert second.calls == served + 20
    finally:
        await channel.close()
        await first.stop()
        await second.stop()


async def test_a_service_is_up_while_any_copy_serves() -> None:
    first, second = await start_copy(), await start_copy()
    down = f"127.0.0.1:{free_port()}"
    settings = Settings(
        query_addr=f"{first.address},{second.address}",
        live_addr=f"{down},{second.address}",
        export_addr=first.address,
        audit_addr=down,
        grpc_tls_ca="",
    )
    backends = Backends.connect(settings, deadline=5)
    names = {"query": "", "live": "", "export": "", "audit": ""}
    try:
        assert [len(backends.replicas[s]) for s in names] == [2, 2, 1, 1]
        assert await check_backends(backends.replicas, names, 1.0) == {
            "query": "SERVING",
            "live": "SERVING",
            "export": "SERVING",
            "audit": "UNAVAILABLE",
        }
        await first.stop()
        statuses = await check_backends(backends.replicas, names, 1.0)
        assert statuses == {
            "query": "SERVING",
            "live": "SERVING",
            "export": "UNAVAILABLE",
            "audit": "UNAVAILABLE",
        }
    finally:
        await backends.close()
        await first.stop()
        await second.stop()
