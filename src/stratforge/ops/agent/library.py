"""The template library a cycle draws signals from, found or built once and then cached.

``ensure_library`` prefers the symbol's discovery library (``stratforge discover``) when it
was built on the same hierarchy and its feature scalers were fitted no later than the
training span ends (its ``train_end`` metadata); a library fitted on all the data would
leak the backtest span into the templates. Otherwise the agent discovers patterns on the
hierarchy (states are causal, so scanning the whole series is safe), clusters those before
the training end into templates, and saves the library under
``<home>/agent/libraries/<SYMBOL>/<key>/``, the key covering the hierarchy, the training end,
the clustering seed and the ATLAS files: repeated cycles reuse it.

A spec names its library by digest (:func:`library_digest`, the first 16 hex of the sha256
of ``library.json``, which itself holds the sha256 of the template files), and
:func:`find_library` finds it again in either place.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stratforge.config import resolve_home
from stratforge.discovery.fractal import discover_patterns
from stratforge.discovery.library import LIBRARY_FILE, TemplateLibrary, library_folder
from stratforge.discovery.span import training_patterns
from stratforge.discovery.templates import CLUSTERING_VERSION, cluster_patterns
from stratforge.errors import DataError
from stratforge.features.cache import atlas_fingerprint
from stratforge.progress import ProgressCallback, no_progress

AGENT_LIBRARIES = Path("agent") / "libraries"


@dataclass(frozen=True)
class LibraryChoice:
    """A loaded library, its digest, folder and source (``discovery`` or ``agent``)."""

    library: TemplateLibrary
    digest: str
    folder: Path
    source: str


def library_digest(folder: Path) -> str:
    """The digest that names the library saved in ``folder``."""
    path = folder / LIBRARY_FILE
    if not path.is_file():
        raise DataError(f"no template library in {folder} ({LIBRARY_FILE} is missing)",
                        source=str(path))
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _agent_root(symbol: str, home: Path | str | None) -> Path:
    return resolve_home(home) / AGENT_LIBRARIES / symbol.upper()


def _cache_key(symbol: str, hierarchy: list[str], train_end: pd.Timestamp, seed: int,
               home: Path | str | None) -> str:
    payload = {"hierarchy": hierarchy, "train_end": train_end.isoformat(), "seed": seed,
               "clustering": CLUSTERING_VERSION,
               "atlas": {tf: atlas_fingerprint(symbol, tf, home=home) for tf in hierarchy}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _discovery_choice(symbol: str, hierarchy: list[str], train_end: pd.Timestamp,
                      home: Path | str | None) -> LibraryChoice | None:
    folder = library_folder(symbol, home)
    if not (folder / LIBRARY_FILE).is_file():
        return None
    try:
        library = TemplateLibrary.load(folder)
    except DataError:
        return None
    fitted_until = library.metadata.get("train_end")
    if list(library.metadata.get("hierarchy") or []) != hierarchy or not fitted_until:
        return None
    if "training_span" not in library.metadata:
        return None  # saved before clustering kept to the training span: it may have leaked
    if pd.Timestamp(fitted_until) > train_end or len(library) == 0:
        return None
    return LibraryChoice(library, library_digest(folder), folder, "discovery")


def ensure_library(symbol: str, hierarchy: list[str], train_end: pd.Timestamp, *,
                   home: Path | str | None = None, seed: int = 0,
                   progress: ProgressCallback = no_progress) -> LibraryChoice:
    """The library to design from (see the module docstring); built when needed."""
    symbol = symbol.upper()
    end = pd.Timestamp(train_end)
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    found = _discovery_choice(symbol, hierarchy, end, home)
    if found is not None:
        return found
    folder = _agent_root(symbol, home) / _cache_key(symbol, hierarchy, end, seed, home)
    if (folder / LIBRARY_FILE).is_file():
        try:
            return LibraryChoice(TemplateLibrary.load(folder), library_digest(folder), folder,
                                 "agent")
        except DataError:
            pass  # damaged or half-written: build it again
    result = discover_patterns(symbol, timeframes=hierarchy, home=home, scan="full",
                               progress=progress)
    patterns = training_patterns(result.patterns, end, symbol=symbol, home=home).patterns
    if len(patterns) == 0:
        raise DataError(f"{symbol}: discovery found no pattern on {', '.join(hierarchy)} "
                        f"before {end.isoformat()}; choose other timeframes or a longer "
                        "training span")
    library = cluster_patterns(patterns, train_end=end, random_state=seed, progress=progress)
    library = library.with_templates([], metadata={"hierarchy": hierarchy, "symbol": symbol,
                                                   "source": "agent"})
    library.save(folder)
    return LibraryChoice(library, library_digest(folder), folder, "agent")


def find_library(symbol: str, digest: str, *, home: Path | str | None = None
                 ) -> TemplateLibrary:
    """The library named ``digest`` (discovery folder or agent cache); DataError if gone."""
    candidates = [library_folder(symbol, home)]
    root = _agent_root(symbol, home)
    if root.is_dir():
        candidates += sorted(p for p in root.iterdir() if p.is_dir())
    for folder in candidates:
        if (folder / LIBRARY_FILE).is_file() and library_digest(folder) == digest:
            return TemplateLibrary.load(folder)
    raise DataError(f"the template library {digest} of this spec is gone (looked in "
                    f"{library_folder(symbol, home)} and {root}); trigger a new cycle, which "
                    "builds a current library")
