"""The broker: analyst API, the registry of live agent streams, fan-out and aggregation."""
