"""SVG pictures as HTML that renders wherever a notebook is read.

A notebook reopened untrusted (JupyterLab, Notebook 7), GitHub and some viewers
sanitize ``text/html`` outputs and strip inline ``<svg>``: the graph became run-on text.
An ``<img>`` whose source is the SVG as a ``data:`` URI survives those sanitizers, needs
no script, and nbconvert's HTML shows it as it is.

Renderers that show no SVG at all (JupyterLab in an untrusted notebook, GitHub, VS
Code's restricted mode, nbconvert to PDF) get a PNG beside it (``png``).

Sizing: a picture is shown at its natural size up to the cell's width, scaled down to fit
a narrower cell (never below ``MIN_SCALE``, past which text gets too small to read), in a
box that grows with the picture up to ``MAX_HEIGHT`` and scrolls beyond.
"""

from __future__ import annotations

import base64
import html
import logging
import re

_logger = logging.getLogger("kernelflow.viz")

MAX_HEIGHT = 640  # px: a taller picture scrolls inside its box
MIN_SCALE = 0.6  # a wide picture shrinks to the cell's width, down to this scale
_PT_TO_PX = 96 / 72  # Graphviz sizes its SVG in points
_SIZE = re.compile(r'<svg[^>]*?\bwidth="([\d.]+)(pt|px)?"[^>]*?\bheight="([\d.]+)(pt|px)?"', re.S)


def svg_size(svg: str) -> tuple[float, float] | None:
    """The picture's width and height in CSS pixels, from its root element (None if unsized)."""
    match = _SIZE.search(svg)
    if match is None:
        return None
    width, wunit, height, hunit = match.groups()
    return (
        float(width) * (_PT_TO_PX if wunit == "pt" else 1),
        float(height) * (_PT_TO_PX if hunit == "pt" else 1),
    )


PNG_SCALE = 2  # pixels per CSS pixel: sharp on high-density screens


def png(svg: str) -> bytes | None:
    """``svg`` drawn as a PNG at ``PNG_SCALE``, or None where CairoSVG or the cairo
    library it needs is missing (the SVG is still there for renderers that show it)."""
    try:
        import cairosvg
    except (ImportError, OSError) as error:  # OSError: no libcairo on this machine
        _logger.debug("No PNG pictures: %s", error)
        return None
    return cairosvg.svg2png(bytestring=svg.encode("utf-8"), scale=PNG_SCALE)


def data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _sizing(svg: str) -> str:
    size = svg_size(svg)
    if size is None:
        return "max-width:100%;height:auto"
    width = size[0]
    return f"width:100%;max-width:{width:.0f}px;min-width:{width * MIN_SCALE:.0f}px;height:auto"


def _box(css_class: str, content: str) -> str:
    return (
        # max-width: inside a widget the box would otherwise grow to the picture's width,
        # and the whole display, header included, would scroll sideways instead of it.
        f'<div class="{css_class}" style="max-height:{MAX_HEIGHT}px;max-width:100%;'
        f'overflow:auto">{content}</div>'
    )


def img_html(svg: str, alt: str, css_class: str) -> str:
    """``svg`` as a sized ``<img>`` in a box that scrolls where the picture is too big."""
    alt = html.escape(alt, quote=True)
    return _box(
        css_class, f'<img alt="{alt}" src="{data_uri(svg)}" style="{_sizing(svg)};display:block">'
    )


def inline_html(svg: str, css_class: str) -> str:
    """``svg`` inline (a live widget, where tooltips work), sized like ``img_html``: its
    viewBox scales it, whatever width it was drawn with."""
    return _box(css_class, re.sub(r"<svg\b", f'<svg style="{_sizing(svg)}"', svg, count=1))
