"""The cluster suite (`make test-cluster`): ClickHouse shards x replicas, N copies of every process,
a Redis Cluster; faults injected into them."""
