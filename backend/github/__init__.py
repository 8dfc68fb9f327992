"""GitHub's REST API for the backend's batch commands: recovering deliveries, backfilling runs."""
