"""Features a user adds to a lookahead audit: a function of the bars, named or passed.

A feature function takes one timeframe's canonical bars (a DataFrame: ``ts``, ``open``,
``high``, ``low``, ``close``, ``volume``) and returns values aligned with them: a Series (its
name, else the function's, names the feature), a DataFrame (one feature per column) or a 1-D
array. A function with a ``timeframe`` parameter also gets the timeframe's name (``"5m"``).
``--feature module:function`` names one; the module may be an importable module or a path to a
``.py`` file.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratforge.errors import ConfigError

FeatureFunction = Callable[..., Any]


def load_feature_function(spec: str, option: str = "--feature") -> FeatureFunction:
    """The function named by ``"module:function"`` (or ``"path/to/file.py:function"``);
    ConfigError saying what could not be found and how to name it (as ``option``)."""
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"{option} {spec!r} is not 'module:function'; name a Python module "
                          "(or a .py file) and a function in it, e.g. my_features:lookahead")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).expanduser()
            if not path.is_file():
                raise ConfigError(f"{option} {spec}: no file {path}")
            loader = importlib.util.spec_from_file_location(f"_stratforge_user_{path.stem}",
                                                            path)
            if loader is None or loader.loader is None:
                raise ConfigError(f"{option} {spec}: {path} cannot be loaded as Python")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ConfigError:
        raise
    except Exception as exc:  # the user's module: any import failure is reported in one line
        raise ConfigError(f"{option} {spec}: importing {module_name} failed "
                          f"({type(exc).__name__}: {exc}); check the module name and that it "
                          "is on PYTHONPATH (or give a path to a .py file)") from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigError(f"{option} {spec}: {module_name} has no function {attribute}")
    return function


def feature_label(function: FeatureFunction) -> str:
    """The name a feature function's unnamed output gets: its ``__name__``."""
    return getattr(function, "__name__", None) or type(function).__name__


def _takes_timeframe(function: FeatureFunction) -> bool:
    try:
        return "timeframe" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def _as_float(values: Any) -> np.ndarray:
    series = pd.Series(values) if not isinstance(values, pd.Series) else values
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy().astype(np.float64)
        codes[codes < 0] = np.nan
        return codes
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def evaluate_feature(function: FeatureFunction, bars: pd.DataFrame, timeframe: str
                     ) -> dict[str, np.ndarray]:
    """``function``'s features of ``bars`` as float arrays by name (categories as codes,
    booleans as 0/1); ConfigError when its output is not aligned with the bars."""
    label = feature_label(function)
    args = {"timeframe": timeframe} if _takes_timeframe(function) else {}
    try:
        result = function(bars.copy(), **args)
    except Exception as exc:  # the user's code: report where it failed, in one line
        raise ConfigError(f"feature {label} failed on {timeframe} bars "
                          f"({type(exc).__name__}: {exc})") from exc
    if isinstance(result, pd.DataFrame):
        columns = {str(name): result[name] for name in result.columns}
    elif isinstance(result, pd.Series):
        columns = {str(result.name) if result.name is not None else label: result}
    else:
        array = np.asarray(result)
        if array.ndim != 1:
            raise ConfigError(f"feature {label} returned {type(result).__name__} of shape "
                              f"{array.shape} on {timeframe}; return a Series, a DataFrame or "
                              "a 1-D array with one value per bar")
        columns = {label: array}
    out = {}
    for name, values in columns.items():
        if len(values) != len(bars):
            raise ConfigError(f"feature {label} returned {len(values)} values for "
                              f"{len(bars)} {timeframe} bars ({name}); return one value per "
                              "bar, aligned with the input")
        raw = values.to_numpy() if isinstance(values, pd.Series) else values
        out[name] = _as_float(raw)
    return out
