"""The durable queue: enqueue and cancel (here), claim/lease/heartbeat/retry and the pool."""
