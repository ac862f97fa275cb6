"""The optimisation worker stays light: importing it pulls in numpy, numba and the simulator,
never scikit-learn, services, the CLI or the pipeline that calls it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import stratforge

WORKER = "stratforge.discovery.worker"
PIPELINE = "stratforge.discovery.optimize"
FORBIDDEN = ("sklearn", "fastapi", "sqlalchemy", "ray", "plotly")
SRC = Path(stratforge.__file__).resolve().parent.parent


def test_importing_the_worker_in_a_fresh_interpreter_stays_light():
    code = (f"import json, sys, {WORKER}; "
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=300)
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    heavy = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN)
    assert not heavy, f"importing the worker loaded {heavy[:5]}"
    assert not [m for m in loaded if m == "stratforge.cli" or m.startswith("stratforge.cli.")]
    assert PIPELINE not in loaded
    assert "stratforge.sim.kernels" in loaded


def _module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(name: str) -> set[str]:
    """Every module a stratforge module names in an import statement (anywhere in it)."""
    path = _module_file(name)
    if path is None:
        return set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names
                         if _module_file(f"{module}.{alias.name}") is not None)
    return found


def _closure(start: str) -> set[str]:
    """Modules loaded by importing ``start``: its imports and every parent package, followed
    through stratforge modules."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        if name.split(".")[0] == "stratforge":
            todo.extend(_imports(name))
    return seen


def test_no_module_the_worker_imports_imports_the_pipeline():
    closure = _closure(WORKER)
    assert "stratforge.sim.kernels" in closure  # the walk does follow imports
    assert PIPELINE not in closure
    third_party = {m.split(".")[0] for m in closure if not m.startswith("stratforge")}
    assert not third_party & set(FORBIDDEN), sorted(third_party & set(FORBIDDEN))
    assert not any(m == "stratforge.cli" or m.startswith("stratforge.cli.") for m in closure)


def test_the_pipeline_does_import_the_worker():
    # the check above means something only if the pipeline is found by the same walk
    assert WORKER in _closure(PIPELINE)
    assert "sklearn" in {m.split(".")[0] for m in _closure(PIPELINE)}
