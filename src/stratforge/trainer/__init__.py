"""The day-by-day trainer (see docs/trainer.md)."""
