"""Numbers about jobs: `/v1/stats` for people and the dashboard, cluster counters for `/metrics`."""
