"""One self-contained HTML page with plotly.js inlined: the shell of every stratforge report."""

from __future__ import annotations

import html
import math
import re
from functools import cache
from importlib.resources import files
from typing import Any

from plotly.offline import get_plotlyjs

_PAGE = "report_page.html"
_SLOT = re.compile(r"\{\{(title|css|plotlyjs|header|body)\}\}")


@cache
def page_template(name: str = _PAGE) -> str:
    """The text of the HTML template ``name`` under the package's ``templates/`` folder."""
    return files("stratforge").joinpath("templates", name).read_text(encoding="utf-8")


def standalone_page(title: str, css: str, header: str, body: str) -> str:
    """The whole page (``templates/report_page.html``): ``title`` (escaped here), ``css``,
    then ``header`` and ``body`` (HTML, already escaped) inside ``<main>``. It needs no
    network: plotly.js comes from the installed plotly package, once. Every chart is redrawn
    at its final size once the page has loaded (a chart is drawn as soon as its ``<div>`` is
    parsed, before the rest of its grid exists, so a grid's first cell is measured full
    width). The slots are filled in one pass, so text inside a value is never a slot."""
    values = {"title": html.escape(title), "css": css, "plotlyjs": get_plotlyjs(),
              "header": header, "body": body}
    return _SLOT.sub(lambda match: values[match.group(1)], page_template())


def escape_cell(value: Any) -> str:
    """A table cell's text, HTML-escaped; None shows as an en dash."""
    return html.escape("–" if value is None else str(value))


def finite_or_none(value: Any) -> float | None:
    """``value`` as a finite float, or None (not a number, NaN, infinite)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
