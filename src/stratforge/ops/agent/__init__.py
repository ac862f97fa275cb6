"""The agent research loop: design, train, gate, backtest, assess; one cycle at a time."""
