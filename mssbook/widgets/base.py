"""What every interactive view shares: static mode, the display bundle, figures as PNG bytes.

A view (:class:`View`) keeps its state in plain Python, computes everything through plain
functions, and builds its ipywidgets only when it is interactive. Displayed, it offers the front
end both the live widget and a static HTML fallback (``text/html``): JupyterLab and Colab show the
widget; exported HTML, GitHub and headless runners show the fallback. In static mode
(``static=True``, or ``MSSBOOK_WIDGETS=static`` for a whole run, e.g. when building the book) no
ipywidget is created at all.
"""

from __future__ import annotations

import io
import os
from html import escape

from ..errors import MissingDependencyError

#: ``MSSBOOK_WIDGETS=static`` makes every view static (no ipywidgets, HTML fallback only).
WIDGETS_ENV = "MSSBOOK_WIDGETS"


def is_static(static: bool | None = None) -> bool:
    """Whether a view should be static: ``static`` when given, else ``$MSSBOOK_WIDGETS == "static"``."""
    if static is not None:
        return bool(static)
    value = os.environ.get(WIDGETS_ENV, "").strip().lower()
    if value not in ("", "static", "interactive"):
        raise ValueError(f"{WIDGETS_ENV}={value!r}: use 'static' or 'interactive' (or leave it unset).")
    return value == "static"


def ipywidgets():
    """The ipywidgets module, or a clear error saying how to install it (or to go static)."""
    try:
        import ipywidgets as module
    except ImportError as exc:
        raise MissingDependencyError(
            "interactive widgets need ipywidgets 8: `pip install \"ipywidgets>=8\"` (or "
            "`pip install \"mssbook[notebooks]\"`); or pass static=True / set MSSBOOK_WIDGETS=static "
            "for the static HTML view."
        ) from exc
    return module


def figure_png(fig, dpi: int = 80, tight: bool = True) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed).

    ``tight``: crop to the drawn content (``bbox_inches="tight"``, which draws the figure twice),
    for figures of unknown layout. ``tight=False`` is for views that lay out their own figure and
    redraw on every slider move: one draw and light zlib compression (level 1: about 3 times
    faster, 5 % larger).
    """
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    if tight:
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    else:
        fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    plt.close(fig)
    return buffer.getvalue()


def png_html(png: bytes, alt: str = "") -> str:
    import base64

    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}"/>'


def table_html(rows: list[list[str]], header: list[str] | None = None) -> str:
    """A small HTML table (cells are escaped)."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header) if header else ""
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="mssbook-table">{f"<thead><tr>{head}</tr></thead>" if head else ""}<tbody>{body}</tbody></table>'


class View:
    """Base of the interactive views.

    Subclasses set ``self.widget`` (an ipywidgets container, or None when static) and implement
    :meth:`static_html`. Displaying the view shows the widget where a widget front end runs and
    the static HTML elsewhere.
    """

    widget = None
    static: bool = False

    def static_html(self) -> str:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": repr(self), "text/html": self.static_html()}
        if self.widget is not None:
            view = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
            bundle.update({k: v for k, v in view.items() if k != "text/plain"})
        return bundle

    def __repr__(self) -> str:
        mode = "static" if self.widget is None else "interactive"
        return f"<{type(self).__name__} ({mode})>"
