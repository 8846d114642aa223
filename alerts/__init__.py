"""Detection: per-elder rules (pure, no I/O) that turn readings into findings."""
