"""A/B listening: several versions of one sound through one player, switched with a click.

Comparing estimates by ear works best when the switch is instant and the level does not move:
:class:`ABPlayer` plays one clip at a time through a single audio element, every clip scaled by
the same factor (never normalised one by one). With ``blind=True`` an extra choice **X** plays one
of the clips chosen at random, and *reveal* tells which: an ABX test (Clark, "High-resolution
subjective testing using a double-blind comparator", JAES 30(5), 1982) for "can I hear the
difference at all?".
"""

from __future__ import annotations

from html import escape
from typing import Mapping

import numpy as np

from ..utils import as_channels_first
from .audio import common_scale, encode_audio, players_html
from .base import View, ipywidgets, is_static

BLIND = "X"


class ABPlayer(View):
    """One player, a switch between ``clips`` (``{label: (channels, samples)}``), one loudness scale.

    Args:
        clips: at least two versions of the same excerpt (e.g. estimates with the same SDR).
        sr: sample rate.
        blind: add **X**, a hidden random pick among the clips, and a *reveal* button.
        seed: seed of the blind draws.
        static: True for the static view (all clips as players); None reads ``$MSSBOOK_WIDGETS``.

    ``player.choice.value = "low-pass"`` is the click; :attr:`playing` is the clip heard.
    """

    def __init__(self, clips: Mapping[str, object], sr: int, blind: bool = False, seed: int = 0,
                 static: bool | None = None):
        self.clips = {str(k): as_channels_first(v) for k, v in clips.items()}
        if len(self.clips) < 2:
            raise ValueError(f"ABPlayer compares at least two clips, got {len(self.clips)}.")
        if BLIND in self.clips and blind:
            raise ValueError(f"a clip is labelled {BLIND!r}, the blind choice; rename it.")
        self.sr = int(sr)
        self.blind = bool(blind)
        self.scale = common_scale(self.clips)
        self._rng = np.random.default_rng(seed)
        self.hidden = self.new_x()
        self._choice = next(iter(self.clips))
        self._revealed = False
        self.static = is_static(static)
        self.widget = None
        self.last_audio = None
        if not self.static:
            self._build()
        self._render()

    def new_x(self) -> str:
        """Draw the clip that X plays; returns its label."""
        self.hidden = list(self.clips)[int(self._rng.integers(len(self.clips)))]
        self._revealed = False
        return self.hidden

    @property
    def playing(self) -> str:
        """The label of the clip heard (X resolved)."""
        return self.hidden if self._choice == BLIND else self._choice

    def audio(self) -> np.ndarray:
        """The samples heard, after the common scale: float32 (channels, samples)."""
        return self.clips[self.playing] * np.float32(self.scale)

    def select(self, label: str) -> np.ndarray:
        """Switch to ``label`` (or ``"X"`` when blind), as a click would; returns the samples heard."""
        options = list(self.clips) + ([BLIND] if self.blind else [])
        if label not in options:
            raise KeyError(f"no clip {label!r}; choose one of {options}")
        if self.widget is not None:
            self.choice.value = label
        else:
            self._choice = label
            self._render()
        return self.audio()

    def _build(self) -> None:
        w = ipywidgets()
        options = list(self.clips) + ([BLIND] if self.blind else [])
        self.choice = w.ToggleButtons(options=options, value=options[0]).add_class("mssbook-ab-choice")
        self.choice.observe(self._on_choice, names="value")
        self.player = w.Audio(value=b"", format="mp3", autoplay=False, loop=False).add_class("mssbook-ab-audio")
        self.status = w.HTML().add_class("mssbook-ab-status")
        row = [self.player]
        if self.blind:
            self.reveal = w.Button(description="reveal X").add_class("mssbook-ab-reveal")
            self.reveal.on_click(lambda _: self._reveal())
            self.redraw = w.Button(description="new X")
            self.redraw.on_click(lambda _: (self.new_x(), self._render()))
            row += [self.reveal, self.redraw]
        self.autoplay = w.Checkbox(value=True, description="play on switch", indent=False)
        self.widget = w.VBox([self.choice, w.HBox(row + [self.autoplay]), self.status]).add_class("mssbook-ab-player")

    def _on_choice(self, change) -> None:
        self._choice = change["new"]
        self._render()

    def _reveal(self) -> None:
        self._revealed = True
        self._render()

    def _render(self) -> None:
        self.last_audio = encode_audio(self.audio(), self.sr)
        if self.widget is None:
            return
        label = "X (hidden)" if self._choice == BLIND and not self._revealed else self.playing
        text = f"playing: <b>{escape(label)}</b>"
        if self._revealed:
            text += f" · X is <b>{escape(self.hidden)}</b>"
        self.status.value = text
        self.last_audio.show_in(self.player, autoplay=self.autoplay.value)

    def static_html(self) -> str:
        return f'<div class="mssbook-ab-static">{players_html(self.clips, self.sr, scale=self.scale)}</div>'
