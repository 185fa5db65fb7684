"""FunctionExplorer: moving a control calls the function again and redraws its figure."""

import pytest

pytest.importorskip("ipywidgets")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from mssbook.widgets import FunctionExplorer  # noqa: E402


def _plot(freq, label="sine", grid=False):
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(3, 2))
    t = np.linspace(0, 1, 200)
    ax.plot(t, np.sin(2 * np.pi * freq * t), label=label)
    ax.grid(grid)
    return fig, f"<b>{label}</b> at {freq} Hz"


def test_controls_redraw_the_figure():
    explorer = FunctionExplorer(_plot, freq=(1, 10, 1), label=["sine", "wave"], grid=False)
    assert explorer.values == {"freq": 1, "label": "sine", "grid": False}
    first = bytes(explorer.image.value)
    assert first.startswith(b"\x89PNG") and "at 1 Hz" in explorer.text.value
    explorer.controls["freq"].value = 5  # a slider move
    assert bytes(explorer.image.value) != first and "at 5 Hz" in explorer.text.value
    explorer.set(label="wave", grid=True)
    assert explorer.values == {"freq": 5, "label": "wave", "grid": True}
    assert "<b>wave</b>" in explorer.text.value
    with pytest.raises(KeyError, match="unknown control"):
        explorer.set(phase=1)


def test_static_and_html_only():
    static = FunctionExplorer(_plot, static=True, values={"freq": 3}, freq=(1, 10))
    assert static.widget is None and "<img" in static.static_html() and "freq = 3" in static.static_html()
    html_only = FunctionExplorer(lambda n: f"<i>{n * 2}</i>", n=(0, 4))
    html_only.controls["n"].value = 3
    assert html_only.text.value == "<i>6</i>" and html_only.png == b""
    with pytest.raises(ValueError, match="at least one control"):
        FunctionExplorer(_plot)
    with pytest.raises(TypeError, match="control 'freq'"):
        FunctionExplorer(_plot, freq="fast")
