"""The HTTP and WebSocket face of 杏北 Care (FastAPI)."""
