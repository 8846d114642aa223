"""MQTT ingest: receive device messages, validate, store, acknowledge after commit."""
