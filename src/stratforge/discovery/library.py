"""The template library: templates (clusters of patterns), their scalers, save and load.

A library lives in one folder as ``templates.parquet`` (one row per template, list columns),
``members.parquet`` (``template_id``, ``pattern_id``: one row per member, in member order) and
``library.json`` (scalers, metadata, and the SHA-256 of both Parquet files). ``library.json``
is written last and removed first, so a folder whose save did not finish is never loaded as a
complete library. No pickle: floats survive exactly (Parquet doubles, ``repr``-precise JSON).
Conventions: docs/discovery.md, "Templates".
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stratforge.data.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    sha256_bytes,
    sha256_file,
)
from stratforge.errors import ConfigError, DataError
from stratforge.features.vectors import DISCRETE_RANGES, FEATURE_NAMES

LIBRARY_FORMAT = "stratforge.template_library"
LIBRARY_VERSION = 1
"""Version of the on-disk layout; ``load`` refuses any other."""

TEMPLATES_FILE = "templates.parquet"
MEMBERS_FILE = "members.parquet"
LIBRARY_FILE = "library.json"

_DIM = len(FEATURE_NAMES)


def _same(a: Any, b: Any) -> bool:
    """Deep equality where NaN equals NaN (so a library with NaN statistics equals itself)."""
    if isinstance(a, float | np.floating) and isinstance(b, float | np.floating):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _floats(values: Iterable[Any], length: int, what: str) -> list[float]:
    out = [float(v) for v in values]
    if len(out) != length:
        raise ConfigError(f"{what} needs {length} values, got {len(out)}")
    return out


def _json_clean(payload: Any, what: str) -> Any:
    """``payload`` as JSON would give it back (tuples become lists); refuses what JSON can't."""
    try:
        return json.loads(json.dumps(payload))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must hold only JSON values (str, int, float, bool, None, "
                          f"lists, dicts with str keys): {exc}") from exc


@dataclass(frozen=True, eq=False)
class FeatureScaler:
    """Standardisation of one timeframe's feature vectors: ``(x - mean) / scale``.

    ``mean`` and ``scale`` hold one float per ``FEATURE_NAMES`` entry; ``n_fit`` counts the
    patterns it was fitted on and ``fitted_on`` says which: ``"train"`` (the training span) or
    ``"all"`` (the timeframe had no training patterns; see docs/discovery.md).
    """

    mean: list[float]
    scale: list[float]
    n_fit: int = 0
    fitted_on: str = "train"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _floats(self.mean, _DIM, "FeatureScaler.mean"))
        object.__setattr__(self, "scale", _floats(self.scale, _DIM, "FeatureScaler.scale"))
        object.__setattr__(self, "n_fit", int(self.n_fit))
        if self.fitted_on not in ("train", "all"):
            raise ConfigError(f"FeatureScaler.fitted_on must be 'train' or 'all', "
                              f"got {self.fitted_on!r}")
        if not all(math.isfinite(s) and s > 0 for s in self.scale):
            raise ConfigError("FeatureScaler.scale must be finite and positive")

    @classmethod
    def fit(cls, values: np.ndarray, *, fitted_on: str = "train") -> FeatureScaler:
        """Mean and population standard deviation of ``values`` (rows x 14, all finite).

        A (near) zero standard deviation gives scale 1, so a constant feature scales to 0.
        The discrete dimensions (``DISCRETE_RANGES``: flags and signs) are scaled by the width
        of their range instead, so a change of flag moves a vector by one unit whatever the
        flag's frequency (a flag set on 5% of the patterns has a standard deviation of 0.22:
        standardised, one flag would move a vector 4.6 units, past the match threshold).
        """
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != _DIM or len(values) == 0:
            raise ConfigError(f"FeatureScaler.fit needs a non-empty (rows, {_DIM}) array, "
                              f"got shape {values.shape}")
        mean = values.mean(axis=0)
        std = values.std(axis=0)
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        scale = np.where(std <= tiny, 1.0, std)
        for name, width in DISCRETE_RANGES.items():
            scale[FEATURE_NAMES.index(name)] = width
        return cls(mean.tolist(), scale.tolist(), len(values), fitted_on)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """``(values - mean) / scale`` for a (rows x 14) array, as float64."""
        values = np.asarray(values, dtype=np.float64)
        return (values - np.asarray(self.mean)) / np.asarray(self.scale)

    def to_json(self) -> dict[str, Any]:
        """The scaler as a JSON object (``mean``, ``scale``, ``n_fit``, ``fitted_on``)."""
        return {"mean": list(self.mean), "scale": list(self.scale), "n_fit": self.n_fit,
                "fitted_on": self.fitted_on}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureScaler):
            return NotImplemented
        return _same(self.to_json(), other.to_json())

    __hash__ = None  # type: ignore[assignment]


def _condition(value: Any, where: str) -> dict[str, Any]:
    """A checked template condition ``{"feature", "above", "cut"}``."""
    if not isinstance(value, Mapping) or set(value) != {"feature", "above", "cut"}:
        raise ConfigError(f"{where}: a condition is a mapping with exactly feature, above and "
                          f"cut, got {value!r}")
    if value["feature"] not in FEATURE_NAMES:
        raise ConfigError(f"{where}: condition feature {value['feature']!r} is not one of "
                          f"{', '.join(FEATURE_NAMES)}")
    cut = float(value["cut"])
    if not math.isfinite(cut):
        raise ConfigError(f"{where}: condition cut must be finite, got {value['cut']!r}")
    return {"feature": str(value["feature"]), "above": bool(value["above"]), "cut": cut}


def side_label(direction: float) -> str:
    """How a template or strategy of ``direction`` trades: "long", "short" or "both" (0:
    fades the move on either side)."""
    return "both" if direction == 0 else ("long" if direction > 0 else "short")


@dataclass(frozen=True, eq=False)
class Template:
    """One template: a cluster of patterns with its centre, direction and oracle statistics.

    Fields as in docs/discovery.md. ``centroid_scaled`` / ``centroid_raw`` are the means of
    the members' scaled / raw feature vectors (``FEATURE_NAMES`` order). ``direction`` is the
    entry side: 0 (what clustering makes) fades the bar's move on either side, long below the
    centre (z < 0) and short above it; +1 (long) or -1 (short) trade one side only, on bars
    whose z says that side fades the move. ``long_share`` is the share of members with z < 0.
    ``oracle_win_rate`` is the mean of the members' ``oracle_win``
    (the win rate of each member's mean-reversion side); ``oracle_direction_share`` the share
    of members whose ``oracle_side`` is the side that fades their move. Percentiles are 25/50/75.
    ``physics_variance`` is the mean over the 14 dimensions of the members' scaled variance.
    ``conditions`` (fission children) restrict the template to the bars whose raw feature
    ``feature`` is above ``cut`` (``above`` true) or at or below it, each a dict
    ``{"feature", "above", "cut"}``; a child keeps its parent's centroid, so the children of a
    split share out the parent's matches. Equality treats NaN as equal to NaN. Change a
    template with ``dataclasses.replace``.
    """

    template_id: str
    timeframes: list[str]
    centroid_scaled: list[float]
    centroid_raw: list[float]
    members: int
    member_ids: list[str]
    direction: int
    oracle_win_rate: float = math.nan
    oracle_direction_share: float = math.nan
    mfe_percentiles: list[float] = field(default_factory=lambda: [math.nan] * 3)
    mae_percentiles: list[float] = field(default_factory=lambda: [math.nan] * 3)
    long_share: float = math.nan
    physics_variance: float = math.nan
    parent_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    conditions: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        put = object.__setattr__
        if not isinstance(self.template_id, str) or not self.template_id:
            raise ConfigError(f"template_id must be a non-empty string, got {self.template_id!r}")
        where = f"template {self.template_id}"
        put(self, "timeframes", [str(t) for t in self.timeframes])
        put(self, "centroid_scaled", _floats(self.centroid_scaled, _DIM,
                                             f"{where}: centroid_scaled"))
        put(self, "centroid_raw", _floats(self.centroid_raw, _DIM, f"{where}: centroid_raw"))
        put(self, "member_ids", [str(m) for m in self.member_ids])
        put(self, "members", int(self.members))
        if self.members != len(self.member_ids):
            raise ConfigError(f"{where}: members is {self.members} but member_ids holds "
                              f"{len(self.member_ids)} ids")
        put(self, "direction", int(self.direction))
        if self.direction not in (-1, 0, 1):
            raise ConfigError(f"{where}: direction must be 0 (fade either side), +1 (long) "
                              f"or -1 (short), got {self.direction}")
        for name in ("oracle_win_rate", "oracle_direction_share", "long_share",
                     "physics_variance"):
            put(self, name, float(getattr(self, name)))
        put(self, "mfe_percentiles", _floats(self.mfe_percentiles, 3, f"{where}: mfe_percentiles"))
        put(self, "mae_percentiles", _floats(self.mae_percentiles, 3, f"{where}: mae_percentiles"))
        if self.parent_id is not None:
            put(self, "parent_id", str(self.parent_id))
        put(self, "params", _json_clean(dict(self.params), f"{where}: params"))
        put(self, "conditions", [_condition(c, where) for c in self.conditions])

    def admits(self, vectors: pd.DataFrame) -> np.ndarray:
        """Which rows of ``vectors`` (raw ``FEATURE_NAMES`` columns) meet every condition
        (all rows when there are none; a missing value meets none)."""
        keep = np.ones(len(vectors), dtype=bool)
        for c in self.conditions:
            values = vectors[c["feature"]].to_numpy(dtype=np.float64)
            with np.errstate(invalid="ignore"):
                keep &= (values > c["cut"]) if c["above"] else (values <= c["cut"])
        return keep

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Template):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))

    __hash__ = None  # type: ignore[assignment]


_TEMPLATE_SCHEMA = pa.schema([
    pa.field("template_id", pa.string(), nullable=False),
    pa.field("timeframes", pa.list_(pa.string())),
    pa.field("centroid_scaled", pa.list_(pa.float64())),
    pa.field("centroid_raw", pa.list_(pa.float64())),
    pa.field("members", pa.int64()),
    pa.field("direction", pa.int8()),
    pa.field("oracle_win_rate", pa.float64()),
    pa.field("oracle_direction_share", pa.float64()),
    pa.field("mfe_percentiles", pa.list_(pa.float64())),
    pa.field("mae_percentiles", pa.list_(pa.float64())),
    pa.field("long_share", pa.float64()),
    pa.field("physics_variance", pa.float64()),
    pa.field("parent_id", pa.string()),
    pa.field("params", pa.string()),  # JSON object
    pa.field("conditions", pa.string()),  # JSON list
])
_MEMBER_SCHEMA = pa.schema([pa.field("template_id", pa.string(), nullable=False),
                            pa.field("pattern_id", pa.string(), nullable=False)])


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", store_schema=False)
    return sink.getvalue()


class TemplateLibrary:
    """An ordered collection of templates, the per-timeframe scalers and run metadata.

    ``TemplateLibrary(templates, scalers, metadata)``: template ids must be unique; scalers map
    a timeframe name to its ``FeatureScaler``; metadata holds JSON values only. A library is
    not changed in place: ``with_templates`` returns a new one. ``save(folder)`` and
    ``TemplateLibrary.load(folder)`` round-trip exactly (``load(save(lib)) == lib``).
    """

    def __init__(self, templates: Iterable[Template], scalers: Mapping[str, FeatureScaler],
                 metadata: Mapping[str, Any] | None = None) -> None:
        self.templates: tuple[Template, ...] = tuple(templates)
        self.scalers: dict[str, FeatureScaler] = {str(k): v for k, v in scalers.items()}
        self.metadata: dict[str, Any] = _json_clean(dict(metadata or {}), "library metadata")
        self._by_id: dict[str, Template] = {}
        for template in self.templates:
            if template.template_id in self._by_id:
                raise ConfigError(f"template id {template.template_id} appears twice in the "
                                  "library; ids must be unique")
            self._by_id[template.template_id] = template

    def __len__(self) -> int:
        return len(self.templates)

    def __iter__(self) -> Iterator[Template]:
        return iter(self.templates)

    def __contains__(self, template_id: object) -> bool:
        return template_id in self._by_id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TemplateLibrary):
            return NotImplemented
        return (self.templates == other.templates and self.scalers == other.scalers
                and _same(self.metadata, other.metadata))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"TemplateLibrary({len(self.templates)} templates, "
                f"timeframes {sorted(self.scalers)})")

    def get(self, template_id: str) -> Template:
        """The template with id ``template_id``; a KeyError names what exists."""
        try:
            return self._by_id[template_id]
        except KeyError:
            sample = ", ".join(list(self._by_id)[:5]) or "none"
            raise KeyError(f"no template {template_id!r} in the library ({len(self)} "
                           f"templates: {sample}{', ...' if len(self) > 5 else ''})") from None

    def scale(self, vectors: pd.DataFrame, timeframe: object) -> np.ndarray:
        """Scaled feature vectors (rows x 14, ``FEATURE_NAMES`` order) of one timeframe.

        ``vectors`` needs the ``FEATURE_NAMES`` columns (others are ignored); ``timeframe`` is
        a name such as ``"5m"`` (or a Timeframe). NaN stays NaN.
        """
        name = str(timeframe)
        if name not in self.scalers:
            raise ConfigError(f"the template library has no scaler for timeframe {name}; it "
                              f"knows {', '.join(sorted(self.scalers)) or 'none'}")
        missing = [c for c in FEATURE_NAMES if c not in vectors.columns]
        if missing:
            raise ConfigError(f"scale: vectors lack column(s) {', '.join(missing)}")
        raw = vectors.loc[:, list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
        return self.scalers[name].transform(raw)

    def with_templates(self, templates: Iterable[Template], *, remove: Iterable[str] = (),
                       metadata: Mapping[str, Any] | None = None) -> TemplateLibrary:
        """A new library: ``templates`` replace those with the same id (in place), the others
        are appended in the order given, and the ids in ``remove`` are dropped.

        Fission uses it as ``lib.with_templates([child_1, child_2], remove=[parent_id])``; the
        optimiser as ``lib.with_templates([dataclasses.replace(t, params=best)])``. Scalers are
        kept; ``metadata``, when given, is merged over the current metadata.
        """
        removed = set(remove)
        unknown = removed - set(self._by_id)
        if unknown:
            raise ConfigError(f"with_templates: cannot remove unknown template(s) "
                              f"{', '.join(sorted(unknown))}")
        incoming = {t.template_id: t for t in templates}
        clash = removed & set(incoming)
        if clash:
            raise ConfigError(f"with_templates: template(s) {', '.join(sorted(clash))} are "
                              "both removed and added")
        kept = [incoming.pop(t.template_id, t) for t in self.templates
                if t.template_id not in removed]
        merged = {**self.metadata, **(metadata or {})}
        return TemplateLibrary([*kept, *incoming.values()], self.scalers, merged)

    def members_frame(self) -> pd.DataFrame:
        """One row per member: ``template_id``, ``pattern_id`` (join it with the patterns frame
        to find which templates hold given patterns)."""
        return pd.DataFrame({
            "template_id": [t.template_id for t in self.templates for _ in t.member_ids],
            "pattern_id": [m for t in self.templates for m in t.member_ids],
        }, columns=["template_id", "pattern_id"])

    def to_frame(self) -> pd.DataFrame:
        """One row per template for display: id, parent, timeframes (comma-joined), members,
        direction, shares and oracle statistics, physics variance, then the raw centroid
        (one column per ``FEATURE_NAMES`` entry)."""
        rows = []
        for t in self.templates:
            row: dict[str, Any] = {
                "template_id": t.template_id, "parent_id": t.parent_id,
                "timeframes": ",".join(t.timeframes), "members": t.members,
                "direction": t.direction, "long_share": t.long_share,
                "oracle_win_rate": t.oracle_win_rate,
                "oracle_direction_share": t.oracle_direction_share,
                "mfe_p25": t.mfe_percentiles[0], "mfe_p50": t.mfe_percentiles[1],
                "mfe_p75": t.mfe_percentiles[2], "mae_p25": t.mae_percentiles[0],
                "mae_p50": t.mae_percentiles[1], "mae_p75": t.mae_percentiles[2],
                "physics_variance": t.physics_variance, "params": dict(t.params)}
            row.update(zip(FEATURE_NAMES, t.centroid_raw, strict=True))
            rows.append(row)
        columns = ["template_id", "parent_id", "timeframes", "members", "direction",
                   "long_share", "oracle_win_rate", "oracle_direction_share", "mfe_p25",
                   "mfe_p50", "mfe_p75", "mae_p25", "mae_p50", "mae_p75", "physics_variance",
                   "params", *FEATURE_NAMES]
        return pd.DataFrame(rows, columns=columns)

    # ------------------------------------------------------------------ persistence

    def _tables(self) -> tuple[pa.Table, pa.Table]:
        ts = self.templates
        columns = {name: [getattr(t, name) for t in ts] for name in _TEMPLATE_SCHEMA.names}
        columns["params"] = [json.dumps(t.params, sort_keys=True) for t in ts]
        columns["conditions"] = [json.dumps(t.conditions, sort_keys=True) for t in ts]
        templates = pa.Table.from_pydict(columns, schema=_TEMPLATE_SCHEMA)
        members = pa.Table.from_pydict({
            "template_id": [t.template_id for t in ts for _ in t.member_ids],
            "pattern_id": [m for t in ts for m in t.member_ids],
        }, schema=_MEMBER_SCHEMA)
        return templates, members

    def save(self, folder: str | Path) -> Path:
        """Write the library to ``folder`` (created if needed) and return the folder.

        Each file is written atomically (temporary file, then rename). ``library.json`` is
        removed first and written last with the SHA-256 of both Parquet files, so an
        interrupted save leaves a folder that ``load`` refuses rather than a mixed library.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / LIBRARY_FILE).unlink(missing_ok=True)
        files: dict[str, dict[str, Any]] = {}
        for name, table in zip((TEMPLATES_FILE, MEMBERS_FILE), self._tables(), strict=True):
            data = _parquet_bytes(table)
            atomic_write_bytes(folder / name, data)
            files[name] = {"sha256": sha256_bytes(data), "rows": table.num_rows}
        atomic_write_json(folder / LIBRARY_FILE, {
            "format": LIBRARY_FORMAT,
            "version": LIBRARY_VERSION,
            "feature_names": list(FEATURE_NAMES),
            "scalers": {tf: s.to_json() for tf, s in self.scalers.items()},
            "metadata": self.metadata,
            "files": files,
        })
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> TemplateLibrary:
        """The library saved in ``folder``; a DataError says what is missing or damaged."""
        folder = Path(folder)
        index = _read_index(folder)
        for name in (TEMPLATES_FILE, MEMBERS_FILE):
            path = folder / name
            expected = index["files"].get(name, {}).get("sha256")
            if not path.is_file():
                raise DataError(f"template library {folder}: {name} is missing; the library "
                                "is incomplete, run discovery again", source=str(path))
            if sha256_file(path) != expected:
                raise DataError(f"template library {folder}: {name} does not match "
                                f"{LIBRARY_FILE} (changed or half-written); run discovery "
                                "again", source=str(path), rule="sha256")
        members: dict[str, list[str]] = {}
        for row in pq.read_table(folder / MEMBERS_FILE).to_pylist():
            members.setdefault(row["template_id"], []).append(row["pattern_id"])
        templates = []
        try:
            for row in pq.read_table(folder / TEMPLATES_FILE).to_pylist():
                row["params"] = json.loads(row["params"])
                row["conditions"] = json.loads(row.get("conditions") or "[]")
                row["member_ids"] = members.get(row["template_id"], [])
                templates.append(Template(**row))
            scalers = {tf: FeatureScaler(**s) for tf, s in index["scalers"].items()}
            return cls(templates, scalers, index.get("metadata", {}))
        except (ConfigError, TypeError, KeyError, ValueError) as exc:
            raise DataError(f"template library {folder}: the stored templates are not valid "
                            f"({exc}); run discovery again", source=str(folder)) from exc


def _read_index(folder: Path) -> dict[str, Any]:
    path = folder / LIBRARY_FILE
    if not path.is_file():
        raise DataError(f"no template library in {folder}: {LIBRARY_FILE} is missing (never "
                        "saved, or the save did not finish); run discovery to build it",
                        source=str(path))
    try:
        index = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"template library {folder}: {LIBRARY_FILE} is not valid JSON ({exc}); "
                        "run discovery again", source=str(path)) from exc
    if not isinstance(index, dict) or index.get("format") != LIBRARY_FORMAT:
        raise DataError(f"template library {folder}: {LIBRARY_FILE} is not a stratforge "
                        "template library index", source=str(path))
    if index.get("version") != LIBRARY_VERSION:
        raise DataError(f"template library {folder}: version {index.get('version')!r} is not "
                        f"supported (this stratforge reads version {LIBRARY_VERSION}); run "
                        "discovery again", source=str(path))
    if index.get("feature_names") != list(FEATURE_NAMES):
        raise DataError(f"template library {folder}: built for other feature names "
                        f"{index.get('feature_names')}; run discovery again", source=str(path))
    if not isinstance(index.get("files"), dict) or not isinstance(index.get("scalers"), dict):
        raise DataError(f"template library {folder}: {LIBRARY_FILE} lacks 'files' or "
                        "'scalers'", source=str(path))
    return index


def library_folder(symbol: str, home: Path | str | None = None) -> Path:
    """Where ``stratforge discover`` keeps the template library of ``symbol``."""
    from stratforge.config import resolve_home

    return resolve_home(home) / "discovery" / symbol.upper() / "library"
