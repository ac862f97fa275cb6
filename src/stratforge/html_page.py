"""One self-contained HTML page with plotly.js inlined: the shell of every stratforge report."""

from __future__ import annotations

import html
import math
from typing import Any

from plotly.offline import get_plotlyjs

# A chart is drawn as soon as its <div> is parsed, before the rest of its grid exists, so a
# grid's first cell is measured full width; redraw every chart at its final size once loaded.
_RESIZE_ON_LOAD = ("window.addEventListener('load', function () {"
                   "document.querySelectorAll('.js-plotly-plot').forEach("
                   "function (el) { Plotly.Plots.resize(el); }); });")


def standalone_page(title: str, css: str, header: str, body: str) -> str:
    """The whole page: ``title`` (escaped here), ``css``, then ``header`` and ``body`` (HTML,
    already escaped) inside ``<main>``. It needs no network: plotly.js comes from the
    installed plotly package, once."""
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{css}</style>\n"
            "<script type=\"text/javascript\">window.PlotlyConfig = {MathJaxConfig: 'local'};"
            "</script>\n"
            f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
            f'<script type="text/javascript">{_RESIZE_ON_LOAD}</script>\n</head>\n<body>\n'
            f"<main>\n{header}\n{body}\n</main>\n</body>\n</html>\n")


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
