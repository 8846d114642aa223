"""The device protocol shared by real wearables, the simulator and the ingest (DESIGN.md)."""
