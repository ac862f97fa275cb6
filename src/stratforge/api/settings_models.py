"""Request models derived from a settings class, and up-front validation of settings.

The research and training routes take the fields of ``ResearchConfig`` / ``TrainConfig`` as
a JSON body: every field optional (absent or null means the default), the same types and
bounds, unknown fields refused. What the bounds cannot check (the settings' own validators,
such as timeframe names) is checked by calling the settings factory before anything is
queued, so bad settings answer 422 naming the field and never reach a worker.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from annotated_types import Ge, Le
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, create_model

from stratforge.errors import StratforgeError

T = TypeVar("T")


def _describe(default: Any) -> str:
    if isinstance(default, tuple):
        default = ",".join(str(v) for v in default)
    return f"Default: {default!r}." if default is not None else "Default: unset."


def settings_request_model(name: str, settings: type[BaseModel], doc: str, *,
                           annotations: Mapping[str, Any] | None = None,
                           extra: Mapping[str, tuple[Any, Any]] | None = None,
                           bounds: Mapping[str, tuple[float | None, float]] | None = None
                           ) -> type[BaseModel]:
    """A body model with every field of ``settings`` optional (default None), keeping their
    bounds; ``annotations`` replaces field types, ``extra`` adds fields (``create_model``
    style), ``bounds`` adds the API's ``(lower, upper)`` bounds (api/limits.py; a value
    outside is a 422 naming the field and the bound). Non-finite numbers and unknown fields
    are refused."""
    fields: dict[str, Any] = {}
    for field_name, info in settings.model_fields.items():
        clone = copy.copy(info)
        default = info.get_default(call_default_factory=True)
        clone.default, clone.default_factory = None, None
        clone.description = info.description or _describe(default)
        if bounds and field_name in bounds:
            lower, upper = bounds[field_name]
            clone.metadata = [*clone.metadata, Le(upper), *([Ge(lower)] if lower is not None
                                                            else [])]
            clone.description += f" At most {upper:g} over the API."
        annotation = (annotations or {}).get(field_name, info.annotation)
        fields[field_name] = (annotation | None, clone)
    fields.update(extra or {})
    config = ConfigDict(extra="forbid", allow_inf_nan=False)
    model = create_model(name, __config__=config, __doc__=doc, **fields)
    return model


def given_values(body: BaseModel | None) -> dict[str, Any]:
    """The fields a request set to something other than null, JSON-ready."""
    if body is None:
        return {}
    return {k: v for k, v in body.model_dump(mode="json", exclude_unset=True).items()
            if v is not None}


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


def require_finite(values: Mapping[str, Any]) -> None:
    """A 422 naming each field that holds NaN or an infinity (JSON cannot store them)."""
    errors = [{"loc": ("body", key), "msg": "numbers must be finite", "type": "value_error"}
              for key, value in values.items() if not _finite(value)]
    if errors:
        raise RequestValidationError(errors)


def validate_settings(make: Callable[..., T], values: Mapping[str, Any],
                      **options: Any) -> T:
    """``make(**options, **values)``, the settings; when it refuses, raise a 422 naming each
    field that is bad on its own (or the whole body for a bad combination). Non-finite
    numbers are refused first (JSON cannot store them)."""
    require_finite(values)
    try:
        return make(**options, **values)
    except StratforgeError as exc:
        whole = str(exc)
    errors = []
    for key, value in values.items():
        try:
            make(**{key: value})
        except StratforgeError as exc:
            errors.append({"loc": ("body", key), "msg": str(exc), "type": "value_error"})
    raise RequestValidationError(errors or [{"loc": ("body",), "msg": whole,
                                             "type": "value_error"}])
