"""Models on disk: ``<home>/models/<fingerprint>/`` with ``model.joblib`` (the fitted
scikit-learn object), ``meta.json`` and ``signals.npz`` (the validation and test span's bars,
predictions, outlier scores and regimes that simulations read).

The folder is written complete under a temporary name and renamed into place, so a reader
never sees half a model; when two workers train the same fingerprint the first rename wins.
joblib (pickle) files are only ever loaded from this folder, by a fingerprint checked to be 64
hex digits and recorded in the database; a path from an API caller is never loaded.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from stratforge.config import resolve_home
from stratforge.data.atomic import atomic_write_json, read_json
from stratforge.errors import DataError
from stratforge.evolution.fingerprint import check_fingerprint

MODEL_FILE = "model.joblib"
META_FILE = "meta.json"
SIGNALS_FILE = "signals.npz"


def models_root(home: Path | str | None = None) -> Path:
    """``<home>/models``."""
    return resolve_home(home) / "models"


def model_folder(fingerprint: str, home: Path | str | None = None) -> Path:
    """The folder of a model (the fingerprint is checked, never a path)."""
    return models_root(home) / check_fingerprint(fingerprint)


def model_exists(fingerprint: str, home: Path | str | None = None) -> bool:
    """True when the model's folder is complete."""
    folder = model_folder(fingerprint, home)
    return all((folder / name).is_file() for name in (MODEL_FILE, META_FILE, SIGNALS_FILE))


def save_model(fingerprint: str, estimator: Any, meta: dict[str, Any],
               signals: dict[str, np.ndarray], home: Path | str | None = None) -> Path:
    """Write the model folder atomically (see the module docstring) and return it."""
    final = model_folder(fingerprint, home)
    if model_exists(fingerprint, home):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.parent / f".tmp-{fingerprint[:16]}-{secrets.token_hex(4)}"
    temp.mkdir()
    try:
        joblib.dump(estimator, temp / MODEL_FILE)
        with open(temp / SIGNALS_FILE, "wb") as handle:
            np.savez(handle, **signals)
        atomic_write_json(temp / META_FILE, meta)
        try:
            os.rename(temp, final)
        except OSError:
            if not model_exists(fingerprint, home):  # a partial folder in the way
                shutil.rmtree(final, ignore_errors=True)
                os.rename(temp, final)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return final


def load_meta(fingerprint: str, home: Path | str | None = None) -> dict[str, Any]:
    """The model's ``meta.json``."""
    return read_json(_file(fingerprint, META_FILE, home))


def load_estimator(fingerprint: str, home: Path | str | None = None) -> Any:
    """The fitted estimator (joblib, from the model's own folder only)."""
    return joblib.load(_file(fingerprint, MODEL_FILE, home))


def load_signals(fingerprint: str, home: Path | str | None = None) -> dict[str, np.ndarray]:
    """The arrays simulations read (no pickled objects allowed)."""
    with np.load(_file(fingerprint, SIGNALS_FILE, home), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _file(fingerprint: str, name: str, home: Path | str | None) -> Path:
    path = model_folder(fingerprint, home) / name
    if not path.is_file():
        raise DataError(f"model {fingerprint[:16]}... has no {name} under {path.parent}; its "
                        "folder is missing or incomplete (retrain it by rerunning the "
                        "evolution)")
    return path
