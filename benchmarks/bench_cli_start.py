"""How soon the CLI prints its first line (issue 18: within 0.5 s).

    python benchmarks/bench_cli_start.py [--repeat 5]

Prints three figures, each the median of ``--repeat`` runs in fresh processes:

- ``import``: ``python -X importtime -c "import stratforge.cli.main"``'s cumulative time of
  ``stratforge.cli.main`` (the entry point's own import, without the interpreter's start);
- ``--help``: wall time of ``python -m stratforge.cli.main --help`` to its exit;
- ``run --quick``: wall time from the start of ``stratforge run --quick`` (a temporary
  home, so the demo market would be built) to its first line on stdout; the run is then
  stopped (its process group gets SIGTERM).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TARGET = 0.5
"""Seconds within which the first line should appear."""


def import_seconds() -> float:
    """Cumulative import time of ``stratforge.cli.main`` in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import stratforge.cli.main"], capture_output=True, text=True,
                          check=True)
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+\s+\|\s+(\d+)\s+\|\s*stratforge\.cli\.main$", line)
        if match:
            return int(match.group(1)) / 1e6
    raise RuntimeError("stratforge.cli.main not in the -X importtime output")


def help_seconds() -> float:
    """Wall time of ``stratforge --help`` to its exit."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stratforge.cli.main", "--help"],
                   capture_output=True, check=True)
    return time.perf_counter() - started


def first_line_seconds(args: list[str]) -> tuple[float, str]:
    """Seconds from the start of ``stratforge ARGS`` (fresh home) to its first stdout line."""
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "stratforge.cli.main", "--home", home,
                                    *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True, start_new_session=True)
        try:
            line = process.stdout.readline()
            seconds = time.perf_counter() - started
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
    return seconds, line.strip()


def main() -> None:
    """Print the three figures and whether each is within the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    figures = {
        "import stratforge.cli.main": statistics.median(import_seconds()
                                                       for _ in range(repeat)),
        "stratforge --help (to exit)": statistics.median(help_seconds() for _ in range(repeat)),
    }
    runs = [first_line_seconds(["run", "--quick"]) for _ in range(repeat)]
    figures["stratforge run --quick (first line)"] = statistics.median(s for s, _ in runs)
    for name, seconds in figures.items():
        verdict = "ok" if seconds <= TARGET else f"over {TARGET} s"
        print(f"{name:<40} {seconds:6.3f} s  {verdict}")
    print(f"first line of run --quick: {runs[0][1]!r}")


if __name__ == "__main__":
    main()
