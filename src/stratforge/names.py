"""Names that become folder names under the home: instrument symbols and run ids.

One rule for every door: the API's request models and path parameters use these patterns,
and the library functions that turn a name into a folder (``AtlasStore.open``, run folders)
call ``check_symbol`` / ``check_run_id``, so the CLI and Python callers get the same rule and
no name can reach outside its folder (no ``/``, no ``..``, no absolute path).
"""

from __future__ import annotations

import re

from stratforge.errors import ConfigError

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
"""A symbol such as MNQ: 1 to 32 letters, digits, '.', '_' or '-', starting with a letter or
digit (stored upper-cased)."""
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
"""A run id, template id or file name: 1 to 128 letters, digits, '.', '_' or '-', starting
with a letter or digit."""


def check_symbol(symbol: str) -> str:
    """``symbol`` upper-cased, or a ConfigError when it breaks ``SYMBOL_PATTERN``."""
    if not isinstance(symbol, str) or re.fullmatch(SYMBOL_PATTERN, symbol) is None:
        raise ConfigError(f"symbol {symbol!r} is not a valid symbol (rule: 1 to 32 letters, "
                          "digits, '.', '_' or '-', starting with a letter or digit; not a "
                          "path). Use the instrument's symbol, such as MNQ or EURUSD")
    return symbol.upper()


def check_run_id(run_id: str) -> str:
    """``run_id`` itself, or a ConfigError when it breaks ``NAME_PATTERN``."""
    if not isinstance(run_id, str) or re.fullmatch(NAME_PATTERN, run_id) is None:
        raise ConfigError(f"run id {run_id!r} is not a valid run id (rule: 1 to 128 letters, "
                          "digits, '.', '_' or '-', starting with a letter or digit; not a "
                          "path). Use an id such as run_20240102_093000_1a2b3c4d, or leave "
                          "--run-id out for a new one")
    return run_id
