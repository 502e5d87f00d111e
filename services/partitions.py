"""Workspace partitions of the Redis keyspace: one hash tag per partition, so that every script
or transaction touching one workspace's keys stays in one Redis Cluster slot."""

from __future__ import annotations

# Partitions (INGEST_PARTITIONS) unless configured: enough ingest streams to spread a Redis
# Cluster's masters, few enough that a flusher reads them all in one round trip on one Redis.
DEFAULT_PARTITIONS = 16


def partition(workspace_id: int, partitions: int) -> int:
    """The partition of a workspace: workspace_id modulo the number of partitions."""
    return int(workspace_id) % max(1, partitions)


def tag(workspace_id: int, partitions: int) -> str:
    """The hash tag of the workspace's partition, e.g. `{p17}`."""
    return partition_tag(partition(workspace_id, partitions))


def partition_tag(number: int) -> str:
    """The hash tag of partition number."""
    return f"{{p{number}}}"


def stream(name: str, number: int) -> str:
    """The ingest stream of partition number: `<name>:{pN}`."""
    return f"{name}:{partition_tag(number)}"


def streams(name: str, partitions: int) -> list[str]:
    """Every partition's ingest stream, partition 0 first."""
    return [stream(name, n) for n in range(max(1, partitions))]


def workspace_stream(name: str, workspace_id: int, partitions: int) -> str:
    """The ingest stream of the workspace's partition."""
    return stream(name, partition(workspace_id, partitions))
