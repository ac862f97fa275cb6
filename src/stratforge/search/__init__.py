"""Parameter search: parameter spaces and samplers (see docs/search.md).

Import the submodules directly, e.g. ``from stratforge.search.space import default_space``
and ``from stratforge.search.samplers import sample_sobol``; this package imports nothing
heavy on its own.
"""
