"""Market data: ingest, validation, the ATLAS multi-timeframe store and synthetic markets."""
