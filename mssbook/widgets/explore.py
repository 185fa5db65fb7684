"""Sliders over any plotting function: the small, general view the chapters use for probes.

``ipywidgets.interact`` does the same through an ``Output`` widget, which captures the kernel's
output and can stall headless notebook runners; :class:`FunctionExplorer` instead draws the
function's figure to PNG bytes and shows them in an ``Image`` widget, with a static fallback::

    probe = FunctionExplorer(lambda offset: plot_probe(model, offset), offset=(0, 2000, 100))
    probe.set(offset=500)          # what moving the slider does; probe.result is the return value
"""

from __future__ import annotations

from html import escape
from typing import Any, Callable

from .base import View, figure_png, ipywidgets, is_static, png_html


def _control(name: str, spec: Any):
    """An ipywidgets control from a spec: ``(min, max, step)`` ints or floats, a list of choices, a
    bool, or a ready ipywidgets control."""
    w = ipywidgets()
    if isinstance(spec, w.ValueWidget):
        control = spec
    elif isinstance(spec, bool):
        control = w.Checkbox(value=spec, description=name)
    elif isinstance(spec, tuple) and len(spec) in (2, 3):
        lo, hi, *step = spec
        integer = all(isinstance(v, int) and not isinstance(v, bool) for v in spec)
        cls = w.IntSlider if integer else w.FloatSlider
        control = cls(min=lo, max=hi, step=step[0] if step else (1 if integer else (hi - lo) / 100),
                      value=lo, description=name, continuous_update=False)
    elif isinstance(spec, (list, dict)):
        control = w.Dropdown(options=spec, description=name)
    else:
        raise TypeError(f"control {name!r}: give (min, max[, step]), a list of choices, a bool or an ipywidget, "
                        f"not {spec!r}")
    control.add_class(f"mssbook-explore-{name}")
    return control


def _default(spec: Any):
    if isinstance(spec, bool):
        return spec
    if isinstance(spec, tuple):
        return spec[0]
    if isinstance(spec, list):
        first = spec[0]
        return first[1] if isinstance(first, tuple) else first
    if isinstance(spec, dict):
        return next(iter(spec.values()))
    if hasattr(spec, "value") and hasattr(spec, "observe"):  # an ipywidget
        return spec.value
    raise TypeError(f"give (min, max[, step]), a list of choices, a bool or an ipywidget, not {spec!r}")


class FunctionExplorer(View):
    """Controls over ``func(**values)``, which returns a matplotlib figure, an HTML string, or a
    ``(figure, html)`` pair; redrawn whenever a control changes.

    Args:
        func: the function to explore.
        static: True for the static view (the first values' result only).
        **controls: one per argument of ``func``: ``(min, max[, step])``, a list/dict of choices,
            a bool, or an ipywidgets control. ``values=`` (a dict) sets initial values.
    """

    def __init__(self, func: Callable[..., Any], static: bool | None = None, values: dict | None = None,
                 **controls):
        if not controls:
            raise ValueError("FunctionExplorer needs at least one control, e.g. offset=(0, 100, 10).")
        self.func = func
        self.values = {}
        for name, spec in controls.items():
            try:
                self.values[name] = _default(spec)
            except TypeError as exc:
                raise TypeError(f"control {name!r}: {exc}") from None
        self.values.update(values or {})
        self.static = is_static(static)
        self.widget = None
        self.result = None
        self.png = b""
        self.html = ""
        if not self.static:
            w = ipywidgets()
            self.controls = {name: _control(name, spec) for name, spec in controls.items()}
            for name, control in self.controls.items():
                control.value = self.values[name]
                control.observe(self._on_change, names="value")
            self.image = w.Image(format="png").add_class("mssbook-explore-image")
            self.text = w.HTML().add_class("mssbook-explore-text")
            self.widget = w.VBox([w.HBox(list(self.controls.values())), self.image, self.text])
            self.widget.add_class("mssbook-function-explorer")
        self._update()

    def set(self, **values) -> Any:
        """Set some arguments (through the controls when interactive) and return the new result."""
        unknown = set(values) - set(self.values)
        if unknown:
            raise KeyError(f"unknown control(s) {sorted(unknown)}; the controls are {sorted(self.values)}")
        if self.widget is None:
            self.values.update(values)
            self._update()
        else:
            for name, value in values.items():
                self.controls[name].value = value  # each change redraws, as a user's move would
        return self.result

    def _on_change(self, _change) -> None:
        self.values = {name: control.value for name, control in self.controls.items()}
        self._update()

    def _update(self) -> None:
        result = self.func(**self.values)
        self.result = result
        fig, html = (result if isinstance(result, tuple) else (result, None))
        if isinstance(fig, str):
            fig, html = None, fig
        self.png = figure_png(fig) if fig is not None else b""
        self.html = html or ""
        if self.widget is not None:
            self.image.value = self.png
            self.image.layout.display = "" if self.png else "none"
            self.text.value = self.html

    def static_html(self) -> str:
        shown = ", ".join(f"{escape(str(k))} = {escape(str(v))}" for k, v in self.values.items())
        image = png_html(self.png, shown) if self.png else ""
        return f'<div class="mssbook-function-explorer-static"><div>{shown}</div>{image}{self.html}</div>'
