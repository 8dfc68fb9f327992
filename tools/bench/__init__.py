"""`make bench`: frontend, backend and end-to-end throughput against their raw queue ceilings."""
