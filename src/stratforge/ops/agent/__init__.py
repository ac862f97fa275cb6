"""The agent research loop: design, train, gate, backtest, assess; one cycle at a time.

- ``service``: what the API and the CLI call (trigger, status, cancel, experiments);
- ``cycle``: the resumable state machine the ``agent_cycle`` job runs; ``jobs``: the
  ``agent_cycle``, ``training`` and ``backtesting`` handlers;
- ``spec`` (the strategy spec, YAML, fingerprint), ``regions`` (parameter-region presets),
  ``designer`` (the pluggable designer interface and the Thompson designer), ``inputs``
  (what the design phase prepares), ``library`` (the template library), ``signals``,
  ``training`` and ``backtesting`` (the two steps), ``modeling`` (the two steps of a design
  that trains an evolution model), ``gates``, ``assessment``,
  ``experiments`` (the experiments table) and ``settings`` (``STRATFORGE_AGENT_*``).

See docs/agent.md.
"""
