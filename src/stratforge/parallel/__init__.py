"""Executor backends that run many independent jobs: in-process, local processes or Ray.

```python
from stratforge.parallel import make_executor

with make_executor("local", workers=4) as ex:
    for index, result in ex.imap_unordered(fn, jobs):  # fn: a module-level function
        results[index] = result
```

Usable by every layer above ``data``; see docs/parallel.md.
"""

from stratforge.parallel.executors import Executor
from stratforge.parallel.factory import EXECUTOR_KINDS, make_executor
from stratforge.parallel.jobs import JobError

__all__ = ["EXECUTOR_KINDS", "Executor", "JobError", "make_executor"]
