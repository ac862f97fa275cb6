"""The research pipeline: `stratforge run` as a library (see docs/research.md).

Import the submodules directly, e.g. ``from stratforge.research.pipeline import
run_research`` and ``from stratforge.research.config import make_config``.
"""
