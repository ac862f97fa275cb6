"""Preloaded by the fork server of local workers (and imported by nothing else that runs it):
importing it makes the fork server die with the process that started it.

The fork server is the direct child of its owner, which recorded its pid in the environment
(:func:`stratforge.parallel.lifeline.mark_owner`); anywhere else the import does nothing.
"""

from __future__ import annotations

import os

from stratforge.parallel.lifeline import owner_from_environment, watch_owner

_owner = owner_from_environment()
if _owner is not None and _owner == os.getppid():
    watch_owner(_owner)
