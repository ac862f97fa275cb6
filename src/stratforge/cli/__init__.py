"""The ``stratforge`` command line."""
