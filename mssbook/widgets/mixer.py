"""The stem mixer: gain, mute and solo per stem, and A/B/X between estimates and references.

A mixing desk for separated stems, as in a DAW: one row per stem with a gain fader (dB), a mute
and a solo button; the mix is rendered in the kernel (:func:`mix_stems`) and played through one
audio element. Uses in the course:

* remix a toy song (turn the vocals down 12 dB: a karaoke version);
* estimates of a model against the true stems (A/B, or X: a blind test of which is which);
* estimate + residual = mixture: with every fader at 0 dB the mix *is* the mixture.

Loudness is kept relative: one scale is fixed when the mixer is built (the one that keeps the
loudest of the full mixes and stems within [-1, 1]), and never changes. Muting a stem makes the
mix quieter, as it should; a mix pushed above full scale by the faders is clipped, and the status
line says so.
"""

from __future__ import annotations

import math
from html import escape
from typing import Iterable, Mapping

import numpy as np

from ..utils import as_channels_first
from .audio import common_scale, encode_audio, players_html
from .base import View, ipywidgets, is_static

#: Range of the gain faders (dB); below the range, use mute.
GAIN_MIN_DB, GAIN_MAX_DB, GAIN_STEP_DB = -30.0, 12.0, 0.5

#: The sets an A/B/X switch chooses between.
AB_CHOICES = ("A", "B", "X")


def _stems_array(stems: Mapping[str, object], what: str) -> dict[str, np.ndarray]:
    """``{name: (C, L) float32}``; mono stems are spread over the channels of the others."""
    if not stems:
        raise ValueError(f"{what}: no stems given; pass a mapping like {{'vocals': array, ...}}.")
    arrays = {str(name): as_channels_first(audio) for name, audio in stems.items()}
    length = {a.shape[-1] for a in arrays.values()}
    if len(length) != 1:
        sizes = ", ".join(f"{n}: {a.shape[-1]}" for n, a in arrays.items())
        raise ValueError(f"{what}: all stems must have the same number of samples ({sizes}); trim or pad them first.")
    channels = max(a.shape[0] for a in arrays.values())
    for name, a in arrays.items():
        if a.shape[0] not in (1, channels):
            raise ValueError(f"{what}: stem {name!r} has {a.shape[0]} channels, others {channels}; "
                             "give every stem the same channels (or mono).")
        arrays[name] = np.broadcast_to(a, (channels, a.shape[-1]))
    return arrays


def audible_stems(names: Iterable[str], muted: Iterable[str] = (), solo: Iterable[str] = ()) -> list[str]:
    """The stems heard: the soloed ones if any (else all), minus the muted ones, in order."""
    names, muted, solo = list(names), set(muted), set(solo)
    unknown = (muted | solo) - set(names)
    if unknown:
        raise KeyError(f"unknown stem(s) {sorted(unknown)}; the stems are {names}")
    heard = [n for n in names if n in solo] if solo else names
    return [n for n in heard if n not in muted]


def mix_stems(stems: Mapping[str, object], gains_db: Mapping[str, float] | None = None,
              muted: Iterable[str] = (), solo: Iterable[str] = ()) -> np.ndarray:
    """The mix a desk plays: ``Σ_j 10^(g_j / 20) · s_j`` over the audible stems.

    Args:
        stems: ``{name: (channels, samples)}`` (numpy or torch; mono stems are spread over the
            channels of the others).
        gains_db: gain of each stem in dB (missing ones: 0 dB).
        muted: stems left out. solo: if any, only these are heard (minus the muted ones).

    Returns:
        float32 (channels, samples). With every gain at 0 dB, nothing muted and nothing soloed,
        the sum of the stems: the mixture when the stems add up to it.
    """
    arrays = _stems_array(stems, "mix_stems")
    gains_db = dict(gains_db or {})
    unknown = set(gains_db) - set(arrays)
    if unknown:
        raise KeyError(f"gains for unknown stem(s) {sorted(unknown)}; the stems are {list(arrays)}")
    first = next(iter(arrays.values()))
    out = np.zeros(first.shape, dtype=np.float32)  # (C, L)
    for name in audible_stems(arrays, muted, solo):
        out += np.float32(10.0 ** (float(gains_db.get(name, 0.0)) / 20.0)) * arrays[name]
    return out


def with_residual(mixture, stems: Mapping[str, object]) -> dict[str, np.ndarray]:
    """``stems`` plus ``"residual"``: the mixture minus their sum (kept as is if already there)."""
    arrays = {str(k): as_channels_first(v) for k, v in stems.items()}
    if "residual" not in arrays:
        arrays["residual"] = as_channels_first(mixture) - sum(arrays.values())
    return arrays


def _dbfs(value: float) -> str:
    return "−∞ dBFS" if value <= 0 else f"{20 * math.log10(value):.1f} dBFS".replace("-", "−")


class StemMixer(View):
    """Gain (dB), mute and solo per stem, one player for the mix, A/B/X between two stem sets.

    Args:
        stems: ``{name: (channels, samples)}``, e.g. a model's estimates (set **A**).
        sr: sample rate.
        reference: optional ``{name: (channels, samples)}`` with the same names, e.g. the true
            stems (set **B**). Then a switch plays A, B or X, a hidden random pick of the two:
            listen, guess, and press *reveal*.
        mixture: optional mixture; the status line then says how far the current mix is from it
            (0 dB faders on estimate + residual give it back exactly).
        title: a heading above the desk.
        seed: seed of the X draws (a new X is drawn with :meth:`new_x`).
        static: True for the static view (players only); None reads ``$MSSBOOK_WIDGETS``.

    Drive it from Python as a click would (``mixer.mutes["vocals"].value = True``,
    ``mixer.gains["bass"].value = -6``) or through :meth:`set`; :meth:`mix` is what is playing.
    """

    def __init__(self, stems: Mapping[str, object], sr: int, reference: Mapping[str, object] | None = None,
                 mixture=None, title: str | None = None, seed: int = 0, static: bool | None = None):
        self.sr = int(sr)
        self.sets = {"A": _stems_array(stems, "StemMixer stems")}
        names = list(self.sets["A"])
        if reference is not None:
            ref = _stems_array(reference, "StemMixer reference")
            if set(ref) != set(names):
                raise ValueError(f"StemMixer: reference stems {sorted(ref)} must have the same names as the "
                                 f"stems {sorted(names)}.")
            if next(iter(ref.values())).shape != next(iter(self.sets["A"].values())).shape:
                raise ValueError("StemMixer: reference stems must have the shape of the stems "
                                 f"({next(iter(ref.values())).shape} vs {next(iter(self.sets['A'].values())).shape}).")
            self.sets["B"] = {n: ref[n] for n in names}
        self.names = names
        self.mixture = None if mixture is None else as_channels_first(mixture)
        if self.mixture is not None and self.mixture.shape[-1] != next(iter(self.sets["A"].values())).shape[-1]:
            raise ValueError("StemMixer: the mixture must have as many samples as the stems.")
        self.title = title
        self._rng = np.random.default_rng(seed)
        self._x_is = "A"
        self.new_x()
        # one fixed loudness scale for everything this desk can play at 0 dB
        full_mixes = [mix_stems(s) for s in self.sets.values()]
        clips = full_mixes + [a for s in self.sets.values() for a in s.values()]
        if self.mixture is not None:
            clips.append(self.mixture)
        self.scale = common_scale(clips)
        self._gains = {n: 0.0 for n in names}
        self._muted: set[str] = set()
        self._solo: set[str] = set()
        self._playing = "A"
        self._revealed = False
        self.static = is_static(static)
        self.widget = None
        self.last_audio = None  # EncodedAudio of the last render
        if not self.static:
            self._build()
        self._render()

    @classmethod
    def for_estimates(cls, mixture, estimates: Mapping[str, object], sr: int,
                      references: Mapping[str, object] | None = None, **kwargs) -> "StemMixer":
        """A desk for a model's output: the estimates plus ``residual`` (the mixture minus them,
        unless ``estimates`` has one), against the true stems of the same targets plus the true
        rest of the mixture when ``references`` are given. All faders at 0 dB play the mixture.
        Further keyword arguments go to the constructor (``title``, ``static``, ...)."""
        mix = as_channels_first(mixture)
        stems, refs = with_residual(mix, estimates), None
        if references is not None:
            missing = [t for t in stems if t != "residual" and t not in references]
            if missing:
                raise ValueError(f"no reference for {missing}; pass references for every estimated target.")
            refs = with_residual(mix, {t: references[t] for t in stems if t != "residual"})
        return cls(stems, sr, reference=refs, mixture=mix, **kwargs)

    # -- state, as plain Python ------------------------------------------------------------------

    @property
    def playing(self) -> str:
        """The set heard: ``"A"``, ``"B"`` or ``"X"``."""
        return self._playing

    @property
    def x_is(self) -> str:
        """Which set X is (``"A"`` or ``"B"``): the answer of the blind test."""
        return self._x_is

    def new_x(self) -> str:
        """Draw X again (A or B with equal chance); returns the answer."""
        self._x_is = "B" if ("B" in self.sets and self._rng.random() < 0.5) else "A"
        self._revealed = False
        return self._x_is

    def current_set(self) -> dict[str, np.ndarray]:
        chosen = self._x_is if self._playing == "X" else self._playing
        return self.sets[chosen]

    def state(self) -> dict:
        """Gains (dB), muted and soloed stems, and the set playing."""
        return {"gains_db": dict(self._gains), "muted": sorted(self._muted), "solo": sorted(self._solo),
                "playing": self._playing}

    def audible(self) -> list[str]:
        return audible_stems(self.names, self._muted, self._solo)

    def mix(self) -> np.ndarray:
        """The current mix, unscaled: float32 (channels, samples)."""
        return mix_stems(self.current_set(), self._gains, self._muted, self._solo)

    def set(self, gains_db: Mapping[str, float] | None = None, muted: Iterable[str] | None = None,
            solo: Iterable[str] | None = None, playing: str | None = None) -> np.ndarray:
        """Change several settings at once (through the controls when interactive); returns the mix."""
        if playing is not None and playing not in self._choices():
            raise ValueError(f"playing must be one of {self._choices()}, got {playing!r}")
        audible_stems(self.names, muted or (), solo or ())  # validates names
        if gains_db and set(gains_db) - set(self.names):
            raise KeyError(f"unknown stem(s) {sorted(set(gains_db) - set(self.names))}; the stems are {self.names}")
        if self.widget is None:
            self._gains.update({n: float(g) for n, g in (gains_db or {}).items()})
            self._muted = set(self._muted if muted is None else muted)
            self._solo = set(self._solo if solo is None else solo)
            self._playing = playing or self._playing
            self._render()
        else:
            with self._hold():
                for n, g in (gains_db or {}).items():
                    self.gains[n].value = float(g)
                for n in self.names:
                    if muted is not None:
                        self.mutes[n].value = n in set(muted)
                    if solo is not None:
                        self.solos[n].value = n in set(solo)
                if playing is not None and self.ab is not None:
                    self.ab.value = playing
            self._render()
        return self.mix()

    def status_text(self) -> str:
        """One line about the mix playing (computed from it: what the browser test reads)."""
        mix = self.mix() * np.float32(self.scale)
        heard = self.audible()
        label = {"A": "A (stems)" if "B" not in self.sets else "A (estimates)", "B": "B (references)",
                 "X": "X (hidden)" if not self._revealed else f"X (= {self._x_is})"}[self._playing]
        if not heard:
            return f"playing {label}: silence (every stem muted)"
        rms = float(np.sqrt(np.mean(np.square(mix, dtype=np.float64))))
        peak = float(np.max(np.abs(mix)))
        text = f"playing {label}: audible: {', '.join(heard)} · mix RMS {_dbfs(rms)}, peak {_dbfs(peak)}"
        if peak > 1.0:
            text += " · clipping: lower a fader"
        if "B" in self.sets and self._same_mixes():
            text += " · A and B are the same mix now (solo or mute a stem to compare them)"
        if self.mixture is not None and (self._playing != "X" or self._revealed):  # X stays blind
            err = self.mix() - self.mixture
            ratio = float(np.sum(np.square(err, dtype=np.float64))) / max(float(np.sum(np.square(self.mixture, dtype=np.float64))), 1e-20)
            text += " · equals the mixture" if ratio < 1e-8 else f" · mix − mixture: {10 * math.log10(ratio):.1f} dB".replace("-", "−")
        return text

    def _same_mixes(self) -> bool:
        """Whether A and B sound the same with the current faders (e.g. estimates + residual and
        references + true residual, all at 0 dB: both are the mixture)."""
        a, b = (mix_stems(self.sets[k], self._gains, self._muted, self._solo) for k in ("A", "B"))
        energy = float(np.sum(np.square(a, dtype=np.float64))) + 1e-20
        return float(np.sum(np.square(a - b, dtype=np.float64))) / energy < 1e-8

    # -- the view ------------------------------------------------------------------------------------

    def _choices(self) -> tuple[str, ...]:
        return AB_CHOICES if "B" in self.sets else ("A",)

    def _build(self) -> None:
        w = ipywidgets()
        self._holding = False
        self.gains, self.mutes, self.solos, rows = {}, {}, {}, []
        for name in self.names:
            slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
            gain = w.FloatSlider(value=0.0, min=GAIN_MIN_DB, max=GAIN_MAX_DB, step=GAIN_STEP_DB, description="",
                                 continuous_update=False, readout_format=".1f",
                                 layout=w.Layout(width="320px")).add_class(f"mssbook-gain-{slug}")
            mute = w.ToggleButton(value=False, description="mute", tooltip=f"mute {name}",
                                  layout=w.Layout(width="70px")).add_class(f"mssbook-mute-{slug}")
            solo = w.ToggleButton(value=False, description="solo", tooltip=f"solo {name}",
                                  layout=w.Layout(width="70px")).add_class(f"mssbook-solo-{slug}")
            for control in (gain, mute, solo):
                control.observe(self._on_change, names="value")
            self.gains[name], self.mutes[name], self.solos[name] = gain, mute, solo
            rows.append(w.HBox([w.Label(name, layout=w.Layout(width="140px")), gain, w.Label("dB"), mute, solo]))
        self.ab = None
        extra = []
        if "B" in self.sets:
            self.ab = w.ToggleButtons(options=[("A: estimates", "A"), ("B: references", "B"), ("X: blind", "X")],
                                      value="A", tooltips=["the stems", "the references", "A or B, hidden"])
            self.ab.add_class("mssbook-mixer-ab")
            self.ab.observe(self._on_change, names="value")
            self.reveal = w.Button(description="reveal X").add_class("mssbook-mixer-reveal")
            self.reveal.on_click(lambda _: self._reveal())
            self.redraw = w.Button(description="new X").add_class("mssbook-mixer-new-x")
            self.redraw.on_click(lambda _: (self.new_x(), self._render()))
            extra.append(w.HBox([self.ab, self.reveal, self.redraw]))
        self.autoplay = w.Checkbox(value=False, description="play on every change", indent=False)
        self.reset = w.Button(description="reset faders").add_class("mssbook-mixer-reset")
        self.reset.on_click(lambda _: self.set({n: 0.0 for n in self.names}, muted=(), solo=()))
        self.audio = w.Audio(value=b"", format="mp3", autoplay=False, loop=False, controls=True)
        self.audio.add_class("mssbook-mixer-audio")
        self.status = w.HTML().add_class("mssbook-mixer-status")
        head = [w.HTML(f"<b>{escape(self.title)}</b>")] if self.title else []
        self.widget = w.VBox(head + rows + extra + [w.HBox([self.audio, self.autoplay, self.reset]), self.status])
        self.widget.add_class("mssbook-stem-mixer")

    class _Hold:
        def __init__(self, mixer):
            self.mixer = mixer

        def __enter__(self):
            self.mixer._holding = True

        def __exit__(self, *exc):
            self.mixer._holding = False

    def _hold(self):
        """Change several controls with one render at the end."""
        return StemMixer._Hold(self)

    def _on_change(self, _change=None) -> None:
        self._gains = {n: float(self.gains[n].value) for n in self.names}
        self._muted = {n for n in self.names if self.mutes[n].value}
        self._solo = {n for n in self.names if self.solos[n].value}
        if self.ab is not None:
            self._playing = self.ab.value
        for n in self.names:
            self.mutes[n].button_style = "danger" if self.mutes[n].value else ""
            self.solos[n].button_style = "warning" if self.solos[n].value else ""
        if not self._holding:
            self._render()

    def _reveal(self) -> None:
        self._revealed = True
        self._render()

    def _render(self) -> None:
        """Re-render the mix in the kernel and hand it to the audio element."""
        self.last_audio = encode_audio(self.mix() * np.float32(self.scale), self.sr)
        if self.widget is None:
            return
        text = escape(self.status_text())
        if self._revealed and "B" in self.sets:
            text += f"<br>X was <b>{self._x_is}</b> ({'references' if self._x_is == 'B' else 'estimates'})."
        self.status.value = text
        self.last_audio.show_in(self.audio, autoplay=self.autoplay.value)

    def static_html(self) -> str:
        """The fallback without a widget front end: every stem (and reference) and the full mix as
        players sharing the desk's one scale (encoded once, then cached: the stems never change)."""
        if getattr(self, "_static_html", None) is None:
            self._static_html = self._make_static_html()
        return self._static_html

    def _make_static_html(self) -> str:
        clips = {"mix (all stems, 0 dB)": mix_stems(self.sets["A"])}
        clips.update({f"{n}" if "B" not in self.sets else f"{n} (estimate)": a for n, a in self.sets["A"].items()})
        if "B" in self.sets:
            clips.update({f"{n} (reference)": a for n, a in self.sets["B"].items()})
        head = f"<b>{escape(self.title)}</b>" if self.title else ""
        return (f'<div class="mssbook-stem-mixer-static">{head}'
                f"{players_html(clips, self.sr, scale=self.scale)}</div>")
