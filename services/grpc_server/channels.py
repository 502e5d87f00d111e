"""Client channels to the gRPC services: one channel per service spread over all its copies
(round_robin over an address list or a DNS name), over TLS when GRPC_TLS_CA is set."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import grpc

from services.config import Settings
from services.grpc_server import tls
from services.telemetry import tracing

ChannelOptions = Sequence[tuple[str, Any]]

_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:")


def addresses(address_list: str) -> list[str]:
    """The host:port entries of a comma-separated service address."""
    entries = [entry.strip() for entry in address_list.split(",")]
    found = [entry for entry in entries if entry]
    if not found:
        raise ValueError(f"no address in {address_list!r}")
    return found


def split_host_port(address: str) -> tuple[str, str]:
    """Host (without IPv6 brackets) and port of host:port or [v6]:port."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{address!r} is not host:port")
    return host.strip("[]"), port


def _family(host: str) -> str | None:
    try:
        return "ipv4" if ipaddress.ip_address(host).version == 4 else "ipv6"
    except ValueError:
        return None


def target(address_list: str) -> str:
    """The gRPC target of a service address: `ipv4:a:p,b:p` (or ipv6) for IP addresses,
    `dns:///name:p` for one name (every address it resolves to is a copy), or the address
    itself when it already names a resolver scheme."""
    entries = addresses(address_list)
    if len(entries) == 1 and entries[0].startswith(_SCHEMES):
        return entries[0]
    families = {_family(split_host_port(entry)[0]) for entry in entries}
    if families == {None} and len(entries) == 1:
        return f"dns:///{entries[0]}"
    if None in families:
        raise ValueError(
            f"{address_list!r}: a list of copies must hold IP addresses only "
            "(or give one DNS name that resolves to every copy)"
        )
    if len(families) > 1:
        raise ValueError(f"{address_list!r} mixes IPv4 and IPv6 addresses")
    return f"{families.pop()}:{','.join(entries)}"


def channel_options(
    settings: Settings, address_list: str, extra: ChannelOptions = ()
) -> list[tuple[str, Any]]:
    """Channel arguments: round_robin, and under TLS the name the certificates must carry."""
    options: list[tuple[str, Any]] = [*extra, ("grpc.lb_policy_name", "round_robin")]
    if settings.grpc_tls_ca:
        entry = addresses(address_list)[0]
        name = settings.grpc_tls_server_name
        if not name and not entry.startswith(_SCHEMES):
            name = split_host_port(entry)[0]
        if name:
            # A list target has no single authority of its own: check every copy against one name.
            options.append(("grpc.ssl_target_name_override", name))
    return options


def open_channel(
    settings: Settings, address_list: str, options: ChannelOptions = ()
) -> grpc.aio.Channel:
    """A grpc.aio channel to every copy at address_list (TLS when GRPC_TLS_CA is set)."""
    credentials = tls.channel_credentials(settings)
    merged = channel_options(settings, address_list, options)
    # The current trace goes along in each call's metadata (no interceptor when tracing is off).
    interceptors = tracing.client_interceptors() or None
    if credentials is None:
        return grpc.aio.insecure_channel(
            target(address_list), options=merged, interceptors=interceptors
        )
    return grpc.aio.secure_channel(
        target(address_list), credentials, options=merged, interceptors=interceptors
    )


def service_channel(
    settings: Settings, service: str, options: ChannelOptions = ()
) -> grpc.aio.Channel:
    """A channel spread over every copy of one of the four services."""
    return open_channel(settings, settings.grpc_addr(service), options)


def replica_channels(
    settings: Settings, service: str, options: ChannelOptions = ()
) -> list[grpc.aio.Channel]:
    """One channel per listed copy of a service (one in all for a single address or a name)."""
    return [
        open_channel(settings, entry, options) for entry in addresses(settings.grpc_addr(service))
    ]
