"""Toy songs: a deterministic generator of short multitrack songs with MUSDB18's four stems.

Every notebook and test of the course trains and evaluates on these songs, so they are built to
*sound like music* (a key, a tempo, a chord progression, a sung melody with phrases, a groove, a
bass line, an accompaniment) while being small, fast to make, free of licences and exactly known:

* a **song plan** (:func:`plan_song`) draws the high-level choices from a seed: key, mode, tempo,
  progression, drum style, bass pattern, timbres, levels, pans, reverbs;
* a **score** (:func:`compose`) turns the plan into notes: melody phrases with rests, bass notes,
  chord voicings, drum hits;
* **synthesis** (:func:`render_song`) turns the score into four stereo stems with plain numpy and
  scipy: additive synthesis with vowel formants for the voice, one-shot drum sounds, Karplus-Strong
  plucked strings, wavetable oscillators, and a light convolution reverb per stem;
* :func:`generate_toy_dataset` writes songs in the MUSDB18-HQ WAV layout, with a ``mus.yaml`` that
  the real ``musdb`` package reads for the train/valid split, and a ``toy.json`` manifest.

The stems are quantized to 16 bits and the mixture is written as the integer sum of the quantized
stems, so the stems read back from disk add up to the mixture *exactly*: separation errors measured
on toy songs are the model's, never the file format's.

Randomness: each song has one integer seed. Each part of a song (plan, melody, drums, ...) draws
from its own random stream derived from that seed, so changing how the drums are made does not
change the melody. Songs are rendered independently, so the number of worker processes never
changes the result.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy import signal

from ..errors import DatasetError, OutputExistsError
from .stems import SAMPLE_RATE, SOURCES

__all__ = [
    "GENERATOR_VERSION",
    "SongPlan",
    "Note",
    "DrumHit",
    "Score",
    "plan_song",
    "compose",
    "render_song",
    "mix_stems",
    "song_seeds",
    "generate_toy_dataset",
    "toy_sizes",
    "default_toy_root",
    "ensure_toy_dataset",
    "summarize_dataset",
    "format_summary",
]

#: Bump when a change alters the audio, so an old dataset on disk is not mistaken for a new one.
GENERATOR_VERSION = 1

#: Split names in the order they are generated; ``valid`` songs live in ``train/`` as in MUSDB18.
SPLITS = ("train", "valid", "test")
_SUBSET = {"train": "train", "valid": "train", "test": "test"}
#: Independent seed streams per split: test songs are "kept apart" from the songs one trains on.
_SPLIT_STREAM = {"train": 1, "valid": 2, "test": 3}

MANIFEST = "toy.json"
SETUP_FILE = "mus.yaml"
#: Target peak of the mixture (linear, full scale = 1).
PEAK = 0.9


def _rng(seed: int, stream: str) -> np.random.Generator:
    """A random generator for one named part of one song (a stable hash keeps streams apart)."""
    return np.random.default_rng([int(seed), zlib.crc32(stream.encode())])


# =================================================================================================
# Music theory: keys, scales, chords
# =================================================================================================

NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
#: Semitones of the seven scale degrees above the tonic.
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
#: Common pop progressions as 0-based scale degrees, one chord per bar (I-V-vi-IV is (0, 4, 5, 3)).
PROGRESSIONS = {
    "major": (
        (0, 4, 5, 3),  # I-V-vi-IV
        (5, 3, 0, 4),  # vi-IV-I-V
        (0, 5, 3, 4),  # I-vi-IV-V
        (1, 4, 0, 0),  # ii-V-I-I
        (0, 3, 5, 4),  # I-IV-vi-V
        (0, 3, 0, 4),  # I-IV-I-V
        (3, 0, 4, 5),  # IV-I-V-vi
    ),
    "minor": (
        (0, 5, 2, 6),  # i-VI-III-VII
        (0, 3, 6, 2),  # i-iv-VII-III
        (0, 6, 5, 6),  # i-VII-VI-VII
        (0, 3, 4, 0),  # i-iv-v-i
        (0, 5, 3, 4),  # i-VI-iv-v
        (5, 6, 0, 0),  # VI-VII-i-i
    ),
}
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")


def degree_semitones(mode: str, degree: int) -> int:
    """Semitones above the tonic of a scale degree; degrees beyond 0..6 wrap into other octaves."""
    return SCALES[mode][degree % 7] + 12 * (degree // 7)


def chord_tones(degree: int, size: int = 3) -> tuple[int, ...]:
    """Scale degrees of the chord built on ``degree`` by stacking thirds (triad, or seventh chord)."""
    return tuple(degree + 2 * i for i in range(size))


def roman_numeral(mode: str, degree: int) -> str:
    """Roman numeral of a diatonic triad: upper case major, lower case minor, ° diminished."""
    root, third, fifth = (degree_semitones(mode, d) for d in chord_tones(degree))
    name = _ROMAN[degree % 7]
    if third - root == 4:
        return name
    return name.lower() + ("°" if fifth - root == 6 else "")


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray | float:
    """Equal temperament, A4 = MIDI 69 = 440 Hz."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69.0) / 12.0)


def _place(pitch_class: int, low: int) -> int:
    """The MIDI note of ``pitch_class`` in the octave ``[low, low + 12)``."""
    return low + (pitch_class - low) % 12


# =================================================================================================
# Song plan: the high-level choices, drawn from the seed
# =================================================================================================

DRUM_STYLES = ("rock", "halftime", "four_on_floor", "funk", "shuffle")
BASS_PATTERNS = ("pulse", "root_fifth", "syncopated", "half", "octaves")
BASS_TIMBRES = ("finger", "synth", "sub")
OTHER_TIMBRES = ("pad", "epiano", "guitar", "organ")
VOICES = ("low", "high")

_ADJECTIVES = (
    "Paper", "Silver", "Quiet", "Electric", "Golden", "Hollow", "Neon", "Velvet", "Distant",
    "Broken", "Midnight", "Crystal", "Amber", "Wandering", "Falling", "Northern", "Little", "Wooden",
)
_NOUNS = (
    "Lanterns", "Rivers", "Satellites", "Harbours", "Echoes", "Gardens", "Skylines", "Letters",
    "Mirrors", "Comets", "Tides", "Windows", "Meadows", "Signals", "Orchards", "Streetlights",
    "Balloons", "Islands",
)


@dataclass(frozen=True)
class SongPlan:
    """Everything that defines a toy song; :func:`render_song` needs nothing else.

    Details below this level (the exact notes, drum sounds, noise) are drawn from ``seed`` by
    :func:`compose` and :func:`render_song`, each part from its own random stream.
    """

    name: str  # "Artist - Title", the MUSDB18 track folder name
    seed: int
    duration: float  # seconds
    key: str  # tonic name, e.g. "D"
    key_root: int  # tonic pitch class, C = 0
    mode: str  # "major" or "minor"
    tempo: float  # beats per minute, 4/4 time
    progression: tuple[str, ...]  # roman numerals, one chord per bar, repeated
    chord_degrees: tuple[int, ...]  # the same progression as 0-based scale degrees
    sevenths: bool  # accompaniment plays seventh chords instead of triads
    n_bars: int  # bars needed to cover ``duration``
    drum_style: str
    swing: float  # 0 straight ... 1 full triplet shuffle of the off-beat eighths/sixteenths
    bass_pattern: str
    bass_timbre: str
    other_timbres: tuple[str, ...]  # accompaniment layers, main layer first
    voice: str  # "low" (tenor/baritone range) or "high" (alto/soprano range)
    levels_db: dict[str, float] = field(default_factory=dict)  # stem gains before the final peak scaling
    pans: dict[str, float] = field(default_factory=dict)  # -1 left ... +1 right
    reverb: dict[str, tuple[float, float]] = field(default_factory=dict)  # stem -> (RT60 s, wet gain)

    @property
    def bar_seconds(self) -> float:
        return 4 * 60.0 / self.tempo

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (tuples become lists); :meth:`from_dict` inverts it."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SongPlan":
        data = dict(data)
        for key in ("progression", "chord_degrees", "other_timbres"):
            data[key] = tuple(data[key])
        data["reverb"] = {k: tuple(v) for k, v in data["reverb"].items()}
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def plan_song(seed: int, duration: float, *, artist: str = "Toy Band") -> SongPlan:
    """Draw the high-level plan of one song from ``seed``.

    ``artist`` only changes the name (the dataset numbers its bands "Toy Band 01", ...); the music
    depends on ``seed`` and ``duration`` alone.
    """
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration}")
    rng = _rng(seed, "plan")
    mode = str(rng.choice(("major", "minor"), p=(0.55, 0.45)))
    key_root = int(rng.integers(12))
    tempo = float(rng.integers(80, 141))
    options = PROGRESSIONS[mode]
    degrees = options[int(rng.integers(len(options)))]
    sevenths = bool(rng.random() < (0.7 if degrees == (1, 4, 0, 0) else 0.25))
    n_bars = math.ceil(duration / (4 * 60.0 / tempo))

    # Swing: a real shuffle for the shuffle style, a little humanising lilt for some others.
    drum_style = str(rng.choice(DRUM_STYLES))
    if drum_style == "shuffle":
        swing = float(rng.uniform(0.6, 1.0))
    else:
        swing = float(rng.uniform(0.1, 0.35)) if rng.random() < 0.25 else 0.0

    others = [str(rng.choice(OTHER_TIMBRES))]
    if rng.random() < 0.35:  # a second, quieter layer under the main one
        others.append("pad" if others[0] != "pad" else "guitar")

    levels_db = {
        "vocals": float(rng.uniform(-2.0, 2.0)),
        "drums": float(rng.uniform(-3.0, 1.0)),
        "bass": float(rng.uniform(-4.0, 0.0)),
        "other": float(rng.uniform(-5.0, 0.0)),
    }
    pans = {
        "vocals": float(rng.uniform(-0.1, 0.1)),
        "bass": float(rng.uniform(-0.1, 0.1)),
        "other": float(rng.choice((-1, 1)) * rng.uniform(0.15, 0.5)),  # balance of the main layer
        "hihat": float(rng.choice((-1, 1)) * rng.uniform(0.2, 0.45)),  # drummer's or audience's view
    }
    # Short, light reverb on the voice keeps its gaps between phrases nearly silent.
    reverb = {
        "vocals": (float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.10, 0.22))),
        "drums": (float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.08, 0.18))),
        "bass": (float(rng.uniform(0.2, 0.4)), float(rng.uniform(0.0, 0.06))),
        "other": (float(rng.uniform(0.6, 1.4)), float(rng.uniform(0.18, 0.35))),
    }
    title = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    key = NOTE_NAMES[key_root]
    return SongPlan(
        name=f"{artist} - {title} in {key} {mode}",
        seed=int(seed),
        duration=float(duration),
        key=key,
        key_root=key_root,
        mode=mode,
        tempo=tempo,
        progression=tuple(roman_numeral(mode, d) for d in degrees),
        chord_degrees=tuple(int(d) for d in degrees),
        sevenths=sevenths,
        n_bars=n_bars,
        drum_style=drum_style,
        swing=round(swing, 3),
        bass_pattern=str(rng.choice(BASS_PATTERNS)),
        bass_timbre=str(rng.choice(BASS_TIMBRES)),
        other_timbres=tuple(others),
        voice=str(rng.choice(VOICES)),
        levels_db={k: round(v, 2) for k, v in levels_db.items()},
        pans={k: round(v, 3) for k, v in pans.items()},
        reverb={k: (round(rt, 3), round(wet, 3)) for k, (rt, wet) in reverb.items()},
    )


# =================================================================================================
# Score: notes and drum hits
# =================================================================================================

VOWELS = ("a", "e", "i", "o", "u")


@dataclass(frozen=True)
class Note:
    """One note of a pitched part; times in seconds, pitch as a MIDI number."""

    start: float
    duration: float
    pitch: float
    velocity: float = 1.0
    phrase: int = 0  # melody only: index of the sung phrase
    vowel: str = "a"  # melody only: the vowel sung on this note
    syllable: bool = True  # melody only: False = same syllable as before (melisma, no consonant)

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class DrumHit:
    time: float  # seconds
    drum: str  # kick, snare, ghost, hat, open_hat, crash, tom_hi, tom_mid, tom_lo
    velocity: float


@dataclass
class Score:
    """The notes of a song: what :func:`render_song` plays."""

    chords: list[tuple[float, float, tuple[int, ...]]]  # (start s, end s, voiced MIDI pitches) per bar
    melody: list[Note]
    bass: list[Note]
    accompaniment: dict[str, list[Note]]  # layer name -> notes
    drums: list[DrumHit]


def compose(plan: SongPlan) -> Score:
    """Write the notes of every part from the plan (deterministic: each part has its own stream)."""
    chords = _voice_chords(plan)
    return Score(
        chords=chords,
        melody=_compose_melody(plan, _rng(plan.seed, "melody")),
        bass=_compose_bass(plan, _rng(plan.seed, "bass-line")),
        accompaniment={
            layer: _compose_accompaniment(plan, layer, chords, _rng(plan.seed, f"comp-{layer}"))
            for layer in plan.other_timbres
        },
        drums=_compose_drums(plan, _rng(plan.seed, "groove")),
    )


def _chord_degree(plan: SongPlan, bar: int) -> int:
    return plan.chord_degrees[bar % len(plan.chord_degrees)]


def _swing_unit(plan: SongPlan) -> int:
    """What swings, in sixteenths: 2 = off-beat eighths (shuffle, eighth-note hats), 1 = sixteenths."""
    return 2 if plan.drum_style == "shuffle" or len(_GROOVES[plan.drum_style]["hat"]) <= 8 else 1


def _grid_time(plan: SongPlan, step: float) -> float:
    """Seconds from the song start of sixteenth-note ``step``, with the song's swing.

    Swing delays every second note of a pair (eighths or sixteenths): with full swing the pair is
    played long-short, 2/3 + 1/3, like a triplet. Every part uses this clock, so all parts swing
    together.
    """
    sixteenth = 15.0 / plan.tempo
    unit = _swing_unit(plan)
    t = step * sixteenth
    if step == int(step) and (int(step) // unit) % 2 == 1 and int(step) % unit == 0:
        t += plan.swing * unit * sixteenth / 3
    return t


def _voice_chords(plan: SongPlan) -> list[tuple[float, float, tuple[int, ...]]]:
    """Voice each bar's chord around middle C, moving as little as possible from the previous one.

    Smooth voice leading is what makes a progression sound like one instrument playing it.
    """
    bar = plan.bar_seconds
    size = 4 if plan.sevenths else 3
    previous = 62.0  # centre of the first voicing (D4)
    out = []
    for b in range(plan.n_bars):
        pcs = [(plan.key_root + degree_semitones(plan.mode, d)) % 12
               for d in chord_tones(_chord_degree(plan, b), size)]
        candidates = [sorted(_place(pc, low) for pc in pcs) for low in range(52, 64)]
        best = min(candidates, key=lambda v: (abs(np.mean(v) - previous), max(v) - min(v)))
        previous = float(np.mean(best))
        out.append((b * bar, (b + 1) * bar, tuple(best)))
    return out


# --- melody ------------------------------------------------------------------------------------

def _phrase_rhythm(rng: np.random.Generator, length: int) -> list[int]:
    """Note lengths in eighths that fill ``length`` eighths and end on a long note (>= a quarter)."""
    durations: list[int] = []
    remaining = length
    while remaining > 4 or (remaining > 2 and rng.random() < 0.5):
        choices = [d for d in (1, 2, 3, 4) if d <= remaining - 2]
        weights = np.array([0.35, 0.4, 0.1, 0.15][: len(choices)])
        durations.append(int(rng.choice(choices, p=weights / weights.sum())))
        remaining -= durations[-1]
    durations.append(remaining)
    return durations


def _compose_melody(plan: SongPlan, rng: np.random.Generator) -> list[Note]:
    """A sung melody: phrases separated by rests; chord tones on strong beats, steps in between.

    Works in scale degrees relative to the tonic (0 = tonic, 7 = tonic an octave up), which keeps
    every note in the key and makes "a step" mean the next note of the scale.
    """
    eighth = 30.0 / plan.tempo
    total = plan.n_bars * 8
    low_tonic, high_tonic = (50, 59) if plan.voice == "low" else (57, 65)
    tonic = _place(plan.key_root, low_tonic)
    if tonic > high_tonic:
        tonic -= 12
    lo, hi = -3, 7  # melody range in scale degrees: a fourth/fifth below to an octave above
    notes: list[Note] = []
    pos = int(rng.choice((0, 0, 1, 2, 4)))  # a short instrumental intro, sometimes none
    degree = int(rng.choice((0, 2, 4)))
    phrase = 0
    motif: list[int] = []  # the rhythm of the first phrase; songs repeat their rhythms
    while pos < total - 2:
        if motif and sum(motif) <= total - pos and rng.random() < 0.6:
            durations = list(motif)
        else:
            lengths = [x for x in (6, 8, 10, 12, 14) if x * eighth <= 3.6]  # a breath every ~4 s
            length = min(int(rng.choice(lengths)), total - pos)
            if length < 3:
                break
            durations = _phrase_rhythm(rng, length)
            motif = motif or durations
        arc = rng.uniform(0.8, 1.0)
        t = pos
        vowel = str(rng.choice(VOWELS))
        for i, dur in enumerate(durations):
            last = i == len(durations) - 1
            chord = {d % 7 for d in chord_tones(_chord_degree(plan, t // 8))}
            if i == 0 or last or t % 4 == 0 or dur >= 3:
                # Strong beat or long note: land on a chord tone, preferably close by.
                candidates = np.array([d for d in range(lo, hi + 1) if d % 7 in chord])
                weights = np.exp(-np.abs(candidates - degree) / 1.5)
                if last:  # phrase endings like to rest on the chord's root or third
                    root = _chord_degree(plan, t // 8) % 7
                    weights = weights * np.where(candidates % 7 == root, 2.0, 1.0)
                degree = int(rng.choice(candidates, p=weights / weights.sum()))
            else:
                step = int(rng.choice((-2, -1, 0, 1, 2), p=(0.1, 0.35, 0.15, 0.3, 0.1)))
                degree = int(np.clip(degree + step, lo, hi))
            melisma = i > 0 and rng.random() < 0.15
            if not melisma and rng.random() < 0.7:
                vowel = str(rng.choice(VOWELS, p=(0.3, 0.2, 0.15, 0.2, 0.15)))
            velocity = arc * rng.uniform(0.8, 1.0) * (1.0 - 0.15 * (i / max(1, len(durations) - 1)))
            start = _grid_time(plan, 2 * t)
            notes.append(Note(
                start=start, duration=_grid_time(plan, 2 * (t + dur)) - start,
                pitch=float(tonic + degree_semitones(plan.mode, degree)),
                velocity=float(velocity), phrase=phrase, vowel=vowel, syllable=not melisma,
            ))
            t += dur
        phrase += 1
        # A rest between phrases: at least 0.7 s, so that the voice really falls silent in between.
        rest = int(rng.choice((2, 3, 4, 6), p=(0.3, 0.2, 0.35, 0.15)))
        pos = t + max(rest, math.ceil(0.7 / eighth))
    return [n for n in notes if n.start < plan.duration]


# --- bass --------------------------------------------------------------------------------------

#: Bass rhythms on an eighth-note grid: (start, length in eighths, tone): Root, 5th, 8ve, Approach.
_BASS_RHYTHMS = {
    "pulse": [(i, 1, "R") for i in range(8)],
    "root_fifth": [(0, 3, "R"), (3, 1, "R"), (4, 3, "5"), (7, 1, "R")],
    "syncopated": [(0, 3, "R"), (3, 3, "R"), (6, 1, "8"), (7, 1, "5")],
    "half": [(0, 4, "R"), (4, 3, "5"), (7, 1, "A")],
    "octaves": [(i, 1, "R" if i % 2 == 0 else "8") for i in range(8)],
}


def _compose_bass(plan: SongPlan, rng: np.random.Generator) -> list[Note]:
    """Roots, fifths and octaves of each bar's chord; sometimes a step leading into the next chord."""
    gate = rng.uniform(0.6, 0.95)  # how long a note is held: staccato ... legato
    low = int(rng.integers(29, 35))  # roots in [low, low + 12): F1..Bb1 up to an octave higher
    notes = []
    for bar in range(plan.n_bars):
        degree = _chord_degree(plan, bar)
        root = _place((plan.key_root + degree_semitones(plan.mode, degree)) % 12, low)
        next_degree = _chord_degree(plan, bar + 1)
        next_root = _place((plan.key_root + degree_semitones(plan.mode, next_degree)) % 12, low)
        rhythm = list(_BASS_RHYTHMS[plan.bass_pattern])
        if bar % 2 == 1 and rng.random() < 0.5:  # lead into the next bar
            start, length, _ = rhythm[-1]
            rhythm[-1] = (start, length, "A")
        for start, length, tone in rhythm:
            if tone == "R":
                pitch = root
            elif tone == "5":
                pitch = root + 7
            elif tone == "8":
                pitch = root + 12
            else:  # approach the next root from the scale step above or below it
                step = int(rng.choice((-1, 1)))
                pitch = next_root + (degree_semitones(plan.mode, next_degree + step)
                                     - degree_semitones(plan.mode, next_degree))
            velocity = (1.0 if start % 4 == 0 else 0.8) * rng.uniform(0.85, 1.0)
            onset = _grid_time(plan, 2 * (bar * 8 + start))
            end = _grid_time(plan, 2 * (bar * 8 + start + length))
            notes.append(Note(start=onset, duration=(end - onset) * gate, pitch=float(pitch),
                              velocity=float(velocity)))
    return [n for n in notes if n.start < plan.duration]


# --- accompaniment -----------------------------------------------------------------------------

_COMP_RHYTHMS = (  # electric-piano / organ comping on an eighth grid: (start, length)
    [(0, 3), (3, 3), (6, 2)],
    [(0, 2), (2, 2), (4, 2), (6, 2)],
    [(0, 4), (4, 4)],
    [(1, 1), (3, 1), (5, 1), (7, 1)],  # off-beat stabs
    [(0, 3), (3, 1), (4, 3), (7, 1)],
)
#: Guitar picking patterns: indices into (low root, three chord tones, high root).
_ARPEGGIOS = (
    (0, 1, 2, 3, 2, 1, 2, 3),
    (0, 2, 1, 3, 0, 2, 1, 3),
    (0, 1, 2, 3, 4, 3, 2, 1),
    (0, 3, 2, 1, 0, 3, 2, 1),
)


def _compose_accompaniment(plan: SongPlan, layer: str, chords, rng: np.random.Generator) -> list[Note]:
    """Chords as a held pad, rhythmic comping (electric piano, organ) or a picked arpeggio (guitar)."""
    notes = []
    if layer == "pad":
        for start, end, voicing in chords:
            for p in voicing:
                notes.append(Note(start=start, duration=end - start, pitch=float(p), velocity=0.8))
    elif layer in ("epiano", "organ"):
        rhythm = _COMP_RHYTHMS[int(rng.integers(len(_COMP_RHYTHMS)))]
        gate = rng.uniform(0.7, 0.95)
        for bar, (_, _, voicing) in enumerate(chords):
            for slot, length in rhythm:
                onset = _grid_time(plan, 2 * (bar * 8 + slot))
                end = _grid_time(plan, 2 * (bar * 8 + slot + length))
                velocity = (1.0 if slot % 4 == 0 else 0.8) * rng.uniform(0.85, 1.0)
                for p in voicing:
                    notes.append(Note(start=onset, duration=(end - onset) * gate, pitch=float(p),
                                      velocity=float(velocity)))
    elif layer == "guitar":
        pattern = _ARPEGGIOS[int(rng.integers(len(_ARPEGGIOS)))]
        # Step in sixteenths: sixteenth notes at slow tempos (unless the eighths swing), else eighths.
        step = 1 if plan.tempo < 100 and (plan.swing == 0 or _swing_unit(plan) == 1) else 2
        for bar, (_, end, voicing) in enumerate(chords):
            strings = [voicing[0] - 12, *voicing[:3]] + [voicing[0] + 12]  # low root, chord, high root
            for i in range(16 // step):
                p = strings[pattern[i % len(pattern)]]
                t = _grid_time(plan, bar * 16 + i * step)
                velocity = (1.0 if i % 4 == 0 else 0.75) * rng.uniform(0.8, 1.0)
                notes.append(Note(start=t, duration=min(end - t + 0.1, 1.2), pitch=float(p),
                                  velocity=float(velocity)))
    else:
        raise ValueError(f"unknown accompaniment layer {layer!r}")
    return [n for n in notes if n.start < plan.duration]


# --- drums -------------------------------------------------------------------------------------

#: Grooves on a sixteenth-note grid (16 steps per bar); two kick variants alternate between bars.
_GROOVES = {
    "rock": {"kick": ([0, 8, 10], [0, 7, 8]), "snare": [4, 12], "hat": list(range(0, 16, 2)), "open": []},
    "halftime": {"kick": ([0, 6, 10], [0, 3, 10]), "snare": [8], "hat": list(range(0, 16, 2)), "open": [14]},
    "four_on_floor": {"kick": ([0, 4, 8, 12], [0, 4, 8, 12]), "snare": [4, 12],
                      "hat": [0, 1, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15], "open": [2, 6, 10, 14]},
    "funk": {"kick": ([0, 3, 10], [0, 6, 10, 11]), "snare": [4, 12], "ghost": [7, 9, 15],
             "hat": list(range(16)), "open": []},
    "shuffle": {"kick": ([0, 10], [0, 6, 10]), "snare": [4, 12], "hat": list(range(0, 16, 2)), "open": []},
}


def _compose_drums(plan: SongPlan, rng: np.random.Generator) -> list[DrumHit]:
    """A groove with accents, swing, small timing drift, a fill every four bars and crashes."""
    groove = _GROOVES[plan.drum_style]
    fill_bars = {b for b in range(plan.n_bars) if b % 4 == 3}
    hits = []

    def add(bar: int, step: int, drum: str, velocity: float) -> None:
        t = _grid_time(plan, bar * 16 + step)
        t += rng.normal(0.0, 0.003)  # a human drummer is a few ms early or late
        hits.append(DrumHit(max(0.0, t), drum, float(np.clip(velocity * rng.uniform(0.88, 1.0), 0.05, 1.0))))

    for bar in range(plan.n_bars):
        fill = bar in fill_bars
        last_step = 8 if fill else 16  # a fill replaces the last two beats
        crash = (bar == 0 and rng.random() < 0.5) or (bar - 1) in fill_bars
        if crash:  # a crash cymbal marks the start of the song or of a new section
            add(bar, 0, "crash", 0.9)
        kick = groove["kick"][bar % 2]
        for s in kick:
            if s < last_step:
                add(bar, s, "kick", 1.0 if s % 8 == 0 else 0.85)
        for s in groove["snare"]:
            if s < last_step:
                add(bar, s, "snare", 0.95)
        for s in groove.get("ghost", []):
            if s < last_step:
                add(bar, s, "ghost", 0.3)
        for s in groove["hat"]:
            if s < last_step and not (crash and s == 0):
                accent = 1.0 if s % 4 == 0 else (0.75 if s % 2 == 0 else 0.55)
                add(bar, s, "hat", 0.7 * accent)
        for s in groove["open"]:
            if s < last_step:
                add(bar, s, "open_hat", 0.6)
        if fill:
            drums = ("snare", "tom_hi", "tom_mid", "tom_lo")
            kind = int(rng.integers(3))
            steps = range(8, 16) if kind else range(8, 16, 2)
            for j, s in enumerate(steps):
                if kind == 2 and j < 4:
                    drum = "snare"
                else:
                    drum = drums[min(3, j * 4 // len(steps))]
                add(bar, s, drum, 0.7 + 0.3 * j / len(steps))
            add(bar, 8, "kick", 0.9)
    return sorted((h for h in hits if h.time < plan.duration), key=lambda h: h.time)


# =================================================================================================
# Synthesis helpers
# =================================================================================================

def _pan_gains(pan: float) -> np.ndarray:
    """Constant-power panning: left/right gains with L^2 + R^2 = 1, so loudness does not depend on pan."""
    theta = (np.clip(pan, -1, 1) + 1) * np.pi / 4
    return np.array([np.cos(theta), np.sin(theta)])  # (2,)


def _place_sound(out: np.ndarray, sound: np.ndarray, start: int) -> None:
    """Add ``sound`` (channels, samples) or (samples,) into ``out`` at sample ``start``; crop at the end."""
    if start >= out.shape[-1]:
        return
    length = min(sound.shape[-1], out.shape[-1] - start)
    out[..., start:start + length] += sound[..., :length]


def _place_panned(out: np.ndarray, mono: np.ndarray, pan: float, start: float, sr: int) -> None:
    """Add a mono sound (samples,) into stereo ``out`` (2, samples) at ``start`` seconds, panned."""
    _place_sound(out, _pan_gains(pan)[:, None] * mono[None], int(round(start * sr)))


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average along the last axis (edges held), computed with a running sum."""
    if width <= 1:
        return x
    pad = width // 2
    head, tail = np.repeat(x[..., :1], pad + 1, -1), np.repeat(x[..., -1:], width - pad, -1)
    padded = np.concatenate([head, x, tail], -1)
    c = np.cumsum(padded, axis=-1)
    return (c[..., width:] - c[..., :-width])[..., : x.shape[-1]] / width


def _band_noise(rng: np.random.Generator, n: int, low: float | None, high: float | None,
                sr: int) -> np.ndarray:
    """White noise filtered to a band (a 2nd-order Butterworth high-pass and/or low-pass)."""
    x = rng.standard_normal(n)
    if low is not None:  # (corners are kept below Nyquist so that low sample rates work too)
        x = signal.sosfilt(signal.butter(2, min(low, 0.4 * sr), "highpass", fs=sr, output="sos"), x)
    if high is not None:
        x = signal.sosfilt(signal.butter(2, min(high, 0.45 * sr), "lowpass", fs=sr, output="sos"), x)
    return x


def _wavetable(amplitudes: np.ndarray, size: int = 4096) -> np.ndarray:
    """One period of sum_k amplitudes[k-1] * sin(2 pi k x), sampled at ``size`` points."""
    spectrum = np.zeros(size // 2 + 1, dtype=complex)
    k = min(len(amplitudes), size // 2 - 1)
    spectrum[1:k + 1] = -0.5j * size * np.asarray(amplitudes[:k])
    table = np.fft.irfft(spectrum, n=size)
    return np.append(table, table[0])  # wrap-around sample for interpolation


def _oscillator(table: np.ndarray, freq: float | np.ndarray, n: int, sr: int,
                phase: float = 0.0) -> np.ndarray:
    """Read a wavetable at frequency ``freq`` (Hz, scalar or per sample) with linear interpolation."""
    size = len(table) - 1
    if np.ndim(freq) == 0:
        cycles = phase + np.arange(n) * (freq / sr)
    else:
        cycles = phase + np.cumsum(freq) / sr
    pos = (cycles % 1.0) * size
    i = pos.astype(np.int64)
    frac = pos - i
    return table[i] * (1 - frac) + table[i + 1] * frac


def _saw_amplitudes(freq: float, cutoff: float, sr: int, max_freq: float = 12000.0) -> np.ndarray:
    """Harmonic amplitudes of a band-limited sawtooth (1/k) through a gentle low-pass at ``cutoff``.

    Stopping below Nyquist avoids aliasing, the classic problem of naive digital oscillators.
    """
    k = np.arange(1, int(min(max_freq, 0.45 * sr) / freq) + 1)
    return (1.0 / k) / np.sqrt(1.0 + (k * freq / cutoff) ** 4)


def karplus_strong(freq: float, n: int, sr: int, rng: np.random.Generator, decay: float = 2.0,
                   brightness: float = 0.5) -> np.ndarray:
    """A plucked string: a burst of noise circulating in a delay line one period long.

    Each round trip goes through a small averaging filter, which damps high harmonics faster than
    low ones, exactly like a real string: y[t] = x[t] + g * (h0 y[t-N] + h1 y[t-N-1] + h2 y[t-N-2]).
    The filter ``h`` also holds a fractional delay so that the pitch is exact. Because every
    feedback tap reaches back at least N samples, a whole block of N samples is computed at once.
    ``decay`` is the time to fall by 60 dB; ``brightness`` (0..1) opens the pluck's excitation.
    """
    period = sr / freq
    delay = int(period - 0.5)  # the averaging filter adds half a sample, the fraction adds ``d``
    d = period - 0.5 - delay
    g = 10 ** (-3.0 / (decay * freq))  # loop gain per period for -60 dB after ``decay`` seconds
    h0, h1, h2 = g * 0.5 * (1 - d), g * 0.5, g * 0.5 * d
    # The burst is one period long, so the bins of its FFT are the string's harmonics: give them
    # random phases and a roll-off above harmonic ``corner`` (a soft finger ... a sharp pick).
    # Without it, low notes stay too bright: they lose little per round trip.
    corner = 1.5 + 30.0 * brightness**2
    k = np.arange(delay // 2 + 1)
    spectrum = np.exp(2j * np.pi * rng.random(len(k))) / (1.0 + (k / corner) ** 2)
    spectrum[0] = 0.0  # no DC: a plucked string swings around its rest position
    burst = np.fft.irfft(spectrum, n=delay)
    burst /= np.abs(burst).max() + 1e-12
    pad = delay + 2
    y = np.zeros(pad + n)
    y[pad:pad + min(delay, n)] = burst[: min(delay, n)]
    for s in range(pad + delay, pad + n, delay):
        e = min(s + delay, pad + n)
        back = s - delay  # the block one period earlier
        y[s:e] += h0 * y[back:e - delay] + h1 * y[back - 1:e - delay - 1] + h2 * y[back - 2:e - delay - 2]
    return y[pad:]


def _release_envelope(n: int, gate: int, attack: int, release: int) -> np.ndarray:
    """Linear attack to 1, hold until ``gate`` samples, linear release to 0 (length ``n``)."""
    env = np.ones(n)
    a = min(attack, n)
    env[:a] = np.linspace(0, 1, a, endpoint=False) if a else env[:a]
    if gate < n:
        r = min(release, n - gate)
        env[gate:gate + r] *= np.linspace(1, 0, r)
        env[gate + r:] = 0
    return env


def _reverb(dry: np.ndarray, rt60: float, wet: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Add a light room: convolve with a decaying, darkening stereo noise impulse response.

    ``dry`` is (2, samples). Independent noise in the two channels makes the tail wide; the
    response is cut where it has decayed by 60 dB, so silence comes back after ``rt60`` seconds.
    """
    if wet <= 0:
        return dry
    length = int(rt60 * sr)
    t = np.arange(length) / sr
    noise = rng.standard_normal((2, length))
    # High frequencies die out faster than low ones in a real room: mix a fast bright tail with a
    # slower dark one.
    dark = signal.sosfilt(signal.butter(1, 2500, "lowpass", fs=sr, output="sos"), noise, axis=-1)
    ir = dark * 10 ** (-3 * t / rt60) + 0.3 * noise * 10 ** (-3 * t / (0.4 * rt60))
    ir[:, : int(0.012 * sr)] = 0  # pre-delay: the first reflection arrives after ~12 ms
    ir /= np.sqrt(np.sum(ir**2, axis=-1, keepdims=True))  # unit energy per channel
    tail = signal.oaconvolve(dry, ir, axes=-1)[:, : dry.shape[-1]]
    return dry + wet * tail


def _normalize_rms(x: np.ndarray, target: float = 0.1) -> np.ndarray:
    rms = np.sqrt(np.mean(x**2))
    return x * (target / rms) if rms > 0 else x


# =================================================================================================
# Vocals: a formant voice singing vowels
# =================================================================================================

#: Formant frequencies F1-F4 (Hz) and bandwidths for sung vowels of an adult male voice (textbook
#: averages); a higher voice scales them up a little (shorter vocal tract).
_FORMANTS = {
    "a": (730, 1090, 2440, 3400),
    "e": (530, 1840, 2480, 3500),
    "i": (300, 2250, 3000, 3700),
    "o": (500, 850, 2500, 3300),
    "u": (330, 870, 2250, 3300),
}
_BANDWIDTHS = (80.0, 100.0, 140.0, 250.0)
_CONSONANTS = {  # band (Hz), duration (s), level relative to the vowel
    "s": ((4000, 9000), 0.07, 0.12),
    "sh": ((2200, 6000), 0.08, 0.10),
    "t": ((2000, 8000), 0.015, 0.25),
    "k": ((1200, 4000), 0.02, 0.2),
    "h": ((600, 4000), 0.05, 0.04),
}


def _formant_gain(freq: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """Magnitude response of a cascade of resonators (the vocal tract) at ``freq``.

    Each resonance: F^2 / sqrt((F^2 - f^2)^2 + (B f)^2), which is 1 at 0 Hz and peaks near F.
    ``freq`` is (harmonics, frames); ``formants`` and ``bandwidths`` are (4, frames).
    """
    gain = np.ones_like(freq)
    for i in range(formants.shape[0]):
        f2 = formants[i] ** 2
        gain *= f2 / np.sqrt((f2 - freq**2) ** 2 + (bandwidths[i] * freq) ** 2)
    return gain


def _render_vocals(plan: SongPlan, notes: list[Note], n: int, sr: int,
                   rng: np.random.Generator) -> np.ndarray:
    """The sung voice, mono (samples,).

    Source-filter model done additively: each harmonic k of the pitch f0(t) is a sine whose
    amplitude is the glottal source slope (k^-alpha) times the vocal-tract (formant) response at
    k * f0(t). Pitch glides between notes (portamento), vibrato fades in on long notes, and the
    vowel changes per syllable with smooth formant transitions.
    """
    out = np.zeros(n)
    if not notes:
        return out
    hop = 64  # control rate for formants and harmonic amplitudes (1.5 ms at 44.1 kHz)
    t = np.arange(n) / sr
    onsets = np.array([round(x.start * sr) for x in notes])
    ends = np.array([round(x.end * sr) for x in notes])

    # --- pitch curve in semitones: hold each note until the next one, then smooth (portamento)
    current = np.clip(np.searchsorted(onsets, np.arange(n), side="right") - 1, 0, None)
    midi = np.array([x.pitch for x in notes])[current]
    glide = int(rng.uniform(0.04, 0.09) * sr)
    midi = _moving_average(_moving_average(midi, glide // 2), glide // 2)

    # --- vibrato: a 5-6.5 Hz wobble that fades in once a long note has settled
    rate = rng.uniform(5.0, 6.5)
    depth = rng.uniform(0.25, 0.6)  # semitones, peak
    delay = rng.uniform(0.12, 0.28)
    times, depths = [0.0], [0.0]
    for x in notes:
        a, b, c = x.start + delay, x.start + delay + 0.2, x.end - 0.03
        if c > b and a > times[-1]:
            times += [a, b, c, x.end]
            depths += [0.0, depth, depth, 0.0]
    vib_depth = np.interp(t, times, depths)
    wobble_t = np.arange(0, n / sr + 1.0, 0.5)  # the rate itself wanders a little (+-5 %)
    rate_t = rate * (1 + 0.05 * np.interp(t, wobble_t, rng.standard_normal(len(wobble_t))))
    vibrato = vib_depth * np.sin(2 * np.pi * np.cumsum(rate_t) / sr + rng.uniform(0, 2 * np.pi))
    # Slow pitch drift and a little fast jitter: no singer holds a pitch perfectly still.
    drift_t = np.arange(0, n / sr + 0.2, 0.1)
    drift = _moving_average(rng.normal(0, 0.12, len(drift_t)), 3)
    jitter_t = np.arange(0, n / sr + 0.04, 0.02)
    jitter = rng.normal(0, 0.03, len(jitter_t))
    midi = midi + vibrato + np.interp(t, drift_t, drift) + np.interp(t, jitter_t, jitter)
    f0 = midi_to_hz(midi)

    # --- loudness envelope: phrase attack/release, a dip at each new syllable (the consonant)
    attack, release = rng.uniform(0.03, 0.06), rng.uniform(0.08, 0.14)
    bt, bv = [], []  # breakpoints (time s, amplitude)
    for i, x in enumerate(notes):
        first = i == 0 or notes[i - 1].phrase != x.phrase
        last = i == len(notes) - 1 or notes[i + 1].phrase != x.phrase
        if first:
            bt += [x.start, x.start + attack]
            bv += [0.0, x.velocity]
        elif x.syllable:
            dip = rng.uniform(0.15, 0.45) * x.velocity
            bt += [x.start - 0.025, x.start, x.start + 0.035]
            bv += [notes[i - 1].velocity * 0.85, dip, x.velocity]
        else:
            bt += [x.start + 0.02]
            bv += [x.velocity]
        if last:
            bt += [x.end, x.end + release]
            bv += [0.85 * x.velocity, 0.0]
    order = np.argsort(bt, kind="stable")  # very short notes could put breakpoints out of order
    amp = np.interp(t, np.maximum.accumulate(np.asarray(bt)[order]), np.asarray(bv)[order], left=0, right=0)

    # --- vowel formants per control frame, smoothed so the vocal tract glides between vowels
    scale = 1.0 if plan.voice == "low" else 1.12
    n_frames = n // hop + 2
    frame_t = np.arange(n_frames) * hop / sr
    frame_note = np.clip(np.searchsorted(onsets / sr, frame_t, side="right") - 1, 0, None)
    targets = np.array([_FORMANTS[x.vowel] for x in notes], dtype=float).T * scale  # (4, notes)
    formants = _moving_average(targets[:, frame_note], int(0.06 * sr / hop))  # (4, frames)
    bandwidths = np.array(_BANDWIDTHS)[:, None] * np.ones((1, n_frames))
    f0_frames = f0[np.minimum(np.arange(n_frames) * hop, n - 1)]
    tilt = rng.uniform(0.9, 1.3)  # glottal source slope: larger = softer, darker voice
    max_freq = min(7000.0, 0.45 * sr)

    # --- additive synthesis, one phrase at a time (phases restart in the silence between phrases)
    voiced = np.zeros(n)
    phrase_ids = np.array([x.phrase for x in notes])
    for p in np.unique(phrase_ids):
        idx = np.flatnonzero(phrase_ids == p)
        s0, s1 = int(onsets[idx[0]]), min(n, int(ends[idx[-1]] + release * sr) + 1)
        if s1 <= s0:
            continue
        j0, j1 = s0 // hop, min(n_frames, s1 // hop + 2)
        ff = f0_frames[j0:j1]
        k = np.arange(1, int(max_freq / ff.min()) + 1)[:, None]  # (K, 1)
        fk = k * ff[None, :]  # (K, frames): the frequency of every harmonic over time
        amps = k ** (-tilt) * _formant_gain(fk, formants[:, j0:j1], bandwidths[:, j0:j1])
        amps *= np.clip((max_freq - fk) / 1000.0, 0, 1)  # fade harmonics out before the top
        amps /= np.sqrt(np.sum(amps**2, axis=0, keepdims=True)) + 1e-12  # loudness set by ``amp``
        pos = np.arange(s0, s1) / hop - j0
        i0 = pos.astype(np.int64)
        w = pos - i0
        phase = 2 * np.pi * np.cumsum(f0[s0:s1]) / sr + rng.uniform(0, 2 * np.pi)
        seg = np.zeros(s1 - s0)
        for h in range(len(k)):
            if amps[h].max() < 1e-4:
                continue
            seg += (amps[h, i0] * (1 - w) + amps[h, i0 + 1] * w) * np.sin((h + 1) * phase)
        voiced[s0:s1] = seg

    # --- breath: a little aspiration noise inside the voice
    breath = _band_noise(rng, n, 1500, 7000, sr) * rng.uniform(0.01, 0.03)
    out = (voiced + breath) * amp

    # --- consonants before some syllables, and an inhale before some phrases
    for i, x in enumerate(notes):
        first = i == 0 or notes[i - 1].phrase != x.phrase
        if first and rng.random() < 0.4:
            length = rng.uniform(0.12, 0.22)
            _add_noise_burst(out, rng, x.start - length - 0.03, length, (500, 3500), 0.03 * x.velocity,
                             sr, "swell")
        if x.syllable and rng.random() < 0.55:
            name = str(rng.choice(tuple(_CONSONANTS)))
            band, length, level = _CONSONANTS[name]
            _add_noise_burst(out, rng, x.start - 0.6 * length, length, band, level * x.velocity, sr,
                             "swell" if length > 0.04 else "burst")
    return out


def _add_noise_burst(out, rng, start, length, band, level, sr, shape) -> None:
    """Add band-passed noise (a consonant or a breath) into ``out`` at ``start`` seconds."""
    s = max(0, int(start * sr))
    m = int(length * sr)
    if m < 8 or s >= len(out):
        return
    noise = _band_noise(rng, m, band[0], band[1], sr)
    noise /= np.sqrt(np.mean(noise**2)) + 1e-12
    if shape == "swell":  # fricatives and breaths fade in and out
        env = np.sin(np.linspace(0, np.pi, m)) ** 2
    else:  # plosives: an instant attack and a fast decay
        env = np.exp(-np.arange(m) / (0.25 * m))
    _place_sound(out, level * env * noise, s)


# =================================================================================================
# Drums: one-shot sounds placed on the groove
# =================================================================================================

def _drum_kit(rng: np.random.Generator, sr: int) -> dict[str, list[np.ndarray]]:
    """Synthesize the kit of one song: a few variants per drum so repeated hits are not identical."""

    def seconds(x: float) -> np.ndarray:
        return np.arange(int(x * sr)) / sr

    def kick() -> np.ndarray:
        # A sine whose pitch falls quickly from ~150 Hz to ~50 Hz, plus a short click for the beater.
        t = seconds(0.5)
        f = f_end + (f_start - f_end) * np.exp(-t / sweep)
        body = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / kick_decay)
        click = _band_noise(rng, len(t), 1500, 8000, sr) * np.exp(-t / 0.004) * click_level
        x = body + click
        return np.tanh(1.5 * x) / np.tanh(1.5)  # a little saturation makes it punchier

    def snare() -> np.ndarray:
        # Tonal body (the drum head) plus band-passed noise (the snare wires).
        t = seconds(0.35)
        body = (np.sin(2 * np.pi * snare_tone * t) * np.exp(-t / 0.05)
                + 0.5 * np.sin(2 * np.pi * 1.8 * snare_tone * t) * np.exp(-t / 0.03))
        wires = _band_noise(rng, len(t), 1200, 9000, sr) * np.exp(-t / snare_decay)
        return 0.6 * body + wires_level * wires

    def hat(decay: float) -> np.ndarray:
        # Metal: high-passed noise with a few inharmonic partials for a metallic ring.
        t = seconds(max(0.08, 4 * decay))
        noise = _band_noise(rng, len(t), hat_cut, None, sr)
        metal = sum(np.sign(np.sin(2 * np.pi * f * t)) for f in hat_partials)
        metal = signal.sosfilt(signal.butter(2, hat_cut, "highpass", fs=sr, output="sos"), metal)
        return (noise + 0.3 * metal) * np.exp(-t / decay) * 0.5

    def tom(freq: float) -> np.ndarray:
        t = seconds(0.5)
        f = freq * (1 + 0.5 * np.exp(-t / 0.02))
        return np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.18) + 0.1 * _band_noise(
            rng, len(t), 500, 5000, sr) * np.exp(-t / 0.02)

    def crash() -> np.ndarray:
        t = seconds(2.0)
        noise = _band_noise(rng, len(t), 3000, None, sr)
        return noise * np.exp(-t / rng.uniform(0.5, 0.9)) * 0.5 * np.minimum(1, t / 0.002)

    f_start, f_end = rng.uniform(110, 180), rng.uniform(42, 60)
    sweep, kick_decay, click_level = rng.uniform(0.02, 0.05), rng.uniform(0.12, 0.3), rng.uniform(0.1, 0.5)
    snare_tone, snare_decay = rng.uniform(170, 240), rng.uniform(0.08, 0.2)
    wires_level = rng.uniform(0.6, 1.1)
    hat_cut = min(rng.uniform(6000, 9000), 0.4 * sr)
    hat_partials = rng.uniform(3000, 9000, 6)
    tom_base = rng.uniform(90, 130)
    kit = {
        "kick": [kick() for _ in range(2)],
        "snare": [snare() for _ in range(3)],
        "hat": [hat(rng.uniform(0.02, 0.045)) for _ in range(4)],
        "open_hat": [hat(rng.uniform(0.15, 0.3)) for _ in range(2)],
        "crash": [crash()],
        "tom_hi": [tom(tom_base * 1.8)],
        "tom_mid": [tom(tom_base * 1.35)],
        "tom_lo": [tom(tom_base)],
    }
    kit["ghost"] = kit["snare"]
    return kit


def _render_drums(plan: SongPlan, hits: list[DrumHit], n: int, sr: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Place the kit's sounds at the hits, each drum at its place in the stereo image. (2, samples)."""
    kit = _drum_kit(rng, sr)
    hat_pan = plan.pans.get("hihat", 0.3)
    pans = {"kick": 0.0, "snare": -0.05, "ghost": -0.05, "hat": hat_pan, "open_hat": hat_pan,
            "crash": -0.6 * np.sign(hat_pan), "tom_hi": 0.3 * np.sign(hat_pan), "tom_mid": 0.0,
            "tom_lo": -0.35 * np.sign(hat_pan)}
    gains = {"kick": 1.0, "snare": 0.8, "ghost": 0.8, "hat": 0.5, "open_hat": 0.35, "crash": 0.3,
             "tom_hi": 0.7, "tom_mid": 0.7, "tom_lo": 0.75}
    out = np.zeros((2, n))
    for hit in hits:
        variants = kit[hit.drum]
        sound = variants[int(rng.integers(len(variants)))]
        _place_panned(out, gains[hit.drum] * hit.velocity * sound, pans[hit.drum], hit.time, sr)
    return out


# =================================================================================================
# Bass
# =================================================================================================

def _render_bass(plan: SongPlan, notes: list[Note], n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """The bass line, mono (samples,): a plucked finger bass, a filtered synth bass, or a round sub."""
    out = np.zeros(n)
    release = int(0.02 * sr)
    decay = rng.uniform(1.2, 2.5)
    cutoff = rng.uniform(500, 1200)
    for x in notes:
        freq = float(midi_to_hz(x.pitch))
        gate = int(x.duration * sr)
        m = gate + release
        if plan.bass_timbre == "finger":
            tone = karplus_strong(freq, m, sr, rng, decay=decay, brightness=0.1)
            tone /= np.abs(tone).max() + 1e-12
        elif plan.bass_timbre == "synth":
            # Two wavetables, bright and dark: crossfading from bright to dark sounds like a
            # low-pass filter closing after the attack (the classic synth-bass "pluck").
            bright = _wavetable(_saw_amplitudes(freq, cutoff * 2.5, sr, 4000))
            dark = _wavetable(_saw_amplitudes(freq, cutoff * 0.5, sr, 4000))
            phase = rng.random()
            env = np.exp(-np.arange(m) / (0.08 * sr))
            tone = env * _oscillator(bright, freq, m, sr, phase) + (1 - env) * _oscillator(dark, freq, m, sr, phase)
        else:  # sub: a sine with a touch of second harmonic, gently saturated
            tt = np.arange(m) / sr
            tone = np.sin(2 * np.pi * freq * tt) + 0.25 * np.sin(4 * np.pi * freq * tt)
            tone = np.tanh(1.6 * tone) / np.tanh(1.6)
        env = _release_envelope(m, gate, int(0.004 * sr), release)
        _place_sound(out, x.velocity * env * tone, int(round(x.start * sr)))
    # Keep the bass in the bass register, below the other instruments.
    return signal.sosfilt(signal.butter(2, 1500, "lowpass", fs=sr, output="sos"), out)


# =================================================================================================
# Other: accompaniment layers
# =================================================================================================

def _render_layer(layer: str, notes: list[Note], n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One accompaniment layer, stereo (2, samples)."""
    out = np.zeros((2, n))
    if layer == "pad":
        # Three detuned sawtooth voices per note, spread left/centre/right, slow attack: a string pad.
        cutoff = rng.uniform(1200, 3000)
        detune = rng.uniform(6, 14)  # cents
        attack, release = rng.uniform(0.15, 0.4), 0.35
        spread = (-0.7, 0.0, 0.7)
        for x in notes:
            freq = float(midi_to_hz(x.pitch))
            gate = int(x.duration * sr)
            m = gate + int(release * sr)
            table = _wavetable(_saw_amplitudes(freq, cutoff, sr, 8000))
            env = _release_envelope(m, gate, int(attack * sr), int(release * sr))
            for cents, pan in zip((-detune, 0.0, detune), spread):
                tone = _oscillator(table, freq * 2 ** (cents / 1200), m, sr, rng.random())
                _place_sound(out, _pan_gains(pan)[:, None] * (0.35 * x.velocity * env * tone)[None],
                             int(round(x.start * sr)))
    elif layer == "epiano":
        # Additive "tine" piano: a few harmonics that decay faster the higher they are, plus a
        # short bell-like partial at the attack.
        decay = rng.uniform(0.6, 1.2)
        bell = rng.uniform(0.05, 0.15)
        for x in notes:
            freq = float(midi_to_hz(x.pitch))
            gate = int(x.duration * sr)
            m = gate + int(0.08 * sr)
            tt = np.arange(m) / sr
            d = decay * (261.6 / freq) ** 0.5
            tone = np.zeros(m)
            for k, a in ((1, 1.0), (2, 0.35), (3, 0.12), (4, 0.05)):
                tone += a * np.sin(2 * np.pi * k * freq * tt) * np.exp(-tt * k / d)
            tone += bell * np.sin(2 * np.pi * 7.1 * freq * tt) * np.exp(-tt / 0.03)
            env = _release_envelope(m, gate, int(0.002 * sr), int(0.08 * sr))
            pan = 0.25 * np.sin(2 * np.pi * 0.5 * x.start)  # a slow auto-pan, as on stage pianos
            _place_panned(out, 0.5 * x.velocity * env * tone, pan, x.start, sr)
    elif layer == "organ":
        # Drawbar organ: a fixed set of harmonics, with a rotating-speaker tremolo that differs
        # between left and right.
        drawbars = np.zeros(8)
        drawbars[[0, 1, 2]] = (0.8, 1.0, 0.6)  # harmonics 1, 2, 3 always; 4, 6, 8 vary per song
        drawbars[[3, 5, 7]] = rng.uniform(0.2, 0.6), rng.uniform(0.1, 0.4), rng.uniform(0.0, 0.3)
        rot = rng.uniform(5.0, 6.8)
        for x in notes:
            freq = float(midi_to_hz(x.pitch))
            gate = int(x.duration * sr)
            m = gate + int(0.04 * sr)
            amps = drawbars[: max(1, int(0.45 * sr / freq))]
            tone = _oscillator(_wavetable(amps), freq, m, sr, rng.random())
            env = _release_envelope(m, gate, int(0.008 * sr), int(0.04 * sr))
            tt = (np.arange(m) + x.start * sr) / sr
            lfo = np.stack([1 + 0.2 * np.sin(2 * np.pi * rot * tt), 1 + 0.2 * np.cos(2 * np.pi * rot * tt)])
            _place_sound(out, 0.2 * x.velocity * lfo * (env * tone)[None], int(round(x.start * sr)))
    elif layer == "guitar":
        # Picked arpeggios on a plucked string (Karplus-Strong), mostly on one side.
        decay = rng.uniform(1.5, 3.0)
        bright = rng.uniform(0.3, 0.65)  # pick attack: soft ... bright
        pan = rng.uniform(-0.5, 0.5)
        for x in notes:
            freq = float(midi_to_hz(x.pitch))
            m = int(x.duration * sr)
            tone = karplus_strong(freq, m, sr, rng, decay=decay, brightness=bright)
            tone *= _release_envelope(m, m - int(0.05 * sr), 0, int(0.05 * sr))
            _place_panned(out, 0.6 * x.velocity * tone, pan, x.start, sr)
        # The guitar's body and pickup soften the pick's attack.
        out = signal.sosfilt(signal.butter(2, 5000, "lowpass", fs=sr, output="sos"), out, axis=-1)
    else:
        raise ValueError(f"unknown accompaniment layer {layer!r}")
    return out


# =================================================================================================
# The whole song
# =================================================================================================

def render_song(plan: SongPlan, sample_rate: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
    """Render the four stems of a song: ``{source: float32 array (2, samples)}``.

    The stems are already scaled (mixture peak ~0.9) and quantized to the 16-bit grid (multiples
    of 1/32768), exactly as they are written to disk; :func:`mix_stems` adds them into the mixture.
    """
    sr = int(sample_rate)
    n = int(round(plan.duration * sr))
    score = compose(plan)

    def spatial(mono: np.ndarray, pan: float) -> np.ndarray:
        return _pan_gains(pan)[:, None] * mono[None]  # (samples,) -> (2, samples)

    voice = _render_vocals(plan, score.melody, n, sr, _rng(plan.seed, "voice"))
    bass = _render_bass(plan, score.bass, n, sr, _rng(plan.seed, "bass"))
    stems = {
        "vocals": spatial(voice, plan.pans["vocals"]),
        "drums": _render_drums(plan, score.drums, n, sr, _rng(plan.seed, "kit")),
        "bass": spatial(bass, plan.pans["bass"]),
    }
    other = np.zeros((2, n))
    for i, layer in enumerate(plan.other_timbres):
        part = _render_layer(layer, score.accompaniment[layer], n, sr, _rng(plan.seed, f"layer-{layer}"))
        part = _normalize_rms(part)
        if i == 0:  # balance the main layer to one side (x sqrt(2): unity gain in the centre)
            part = _pan_gains(plan.pans["other"])[:, None] * np.sqrt(2) * part
        other += part * (1.0 if i == 0 else 0.4)
    stems["other"] = other

    fade = np.ones(n)
    m = min(n, int(0.01 * sr))
    fade[n - m:] = np.linspace(1, 0, m)  # no click where the excerpt is cut
    for name in SOURCES:
        rt60, wet = plan.reverb[name]
        x = _reverb(stems[name], rt60, wet, _rng(plan.seed, f"reverb-{name}"), sr)
        stems[name] = _normalize_rms(x) * 10 ** (plan.levels_db[name] / 20) * fade

    # One gain for all stems keeps their balance and puts the mixture's peak at PEAK (no stem clips).
    peak = max(np.abs(sum(stems.values())).max(), *(np.abs(s).max() for s in stems.values()))
    gain = PEAK / peak if peak > 0 else 1.0
    return {name: (_to_int16(stems[name] * gain).astype(np.float32) / 32768.0) for name in SOURCES}


def _to_int16(x: np.ndarray) -> np.ndarray:
    """Round to the 16-bit grid (as soundfile reads PCM_16: value / 32768)."""
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def mix_stems(stems: dict[str, np.ndarray]) -> np.ndarray:
    """The mixture (2, samples) as the sum of quantized stems; exact in float32 for 16-bit stems."""
    return sum(stems[name].astype(np.float64) for name in SOURCES).astype(np.float32)


def _write_song(plan: SongPlan, folder: str, sample_rate: int) -> str:
    """Render one song and write its five WAV files into ``folder`` (runs in a worker process)."""
    stems = render_song(plan, sample_rate)
    ints = {name: np.round(stems[name].astype(np.float64) * 32768).astype(np.int32) for name in SOURCES}
    mixture = sum(ints.values())
    if np.abs(mixture).max() > 32767:  # cannot happen with PEAK < 1; a guard for future edits
        raise AssertionError(f"mixture of {plan.name} overflows 16 bits")
    os.makedirs(folder, exist_ok=True)
    for name, data in (("mixture", mixture), *ints.items()):
        sf.write(os.path.join(folder, f"{name}.wav"), data.T.astype(np.int16), sample_rate, subtype="PCM_16")
    return plan.name


# =================================================================================================
# Datasets on disk
# =================================================================================================

def song_seeds(seed: int, split: str, count: int) -> list[int]:
    """Seeds of the songs of one split: a separate stream per split, so test songs never depend on
    how many train songs were asked for (and the first k songs are the same for any count >= k)."""
    return [int(np.random.SeedSequence([int(seed), _SPLIT_STREAM[split], i]).generate_state(1)[0])
            for i in range(count)]


def _dataset_plans(seed: int, counts: dict[str, int], duration: float) -> list[tuple[str, SongPlan]]:
    """(split, plan) for every song; bands are numbered through train, valid and test."""
    out = []
    number = 1
    for split in SPLITS:
        for s in song_seeds(seed, split, counts[split]):
            out.append((split, plan_song(s, duration, artist=f"Toy Band {number:02d}")))
            number += 1
    seeds = [p.seed for _, p in out]
    if len(set(seeds)) != len(seeds):  # 32-bit seeds: vanishingly unlikely, but never silently
        raise DatasetError(f"seed {seed} gives two songs the same seed; choose another seed")
    return out


def _params(seed, n_train, n_valid, n_test, duration, sample_rate) -> dict[str, Any]:
    return {"generator_version": GENERATOR_VERSION, "seed": int(seed), "n_train": int(n_train),
            "n_valid": int(n_valid), "n_test": int(n_test), "duration": float(duration),
            "sample_rate": int(sample_rate)}


def _read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _matches(root: Path, params: dict[str, Any]) -> bool:
    """Whether ``root`` holds a complete toy dataset made with exactly these parameters."""
    manifest = _read_manifest(root) if root.is_dir() else None
    return manifest is not None and manifest.get("params") == params and _complete(root, manifest)


def _complete(root: Path, manifest: dict[str, Any]) -> bool:
    """Whether every song folder of the manifest holds its five WAV files."""
    return all((root / song["subset"] / song["name"] / f"{stem}.wav").is_file()
               for song in manifest.get("songs", []) for stem in ("mixture", *SOURCES))


def _write_setup_file(root: Path, validation_names: list[str], sample_rate: int) -> None:
    """``mus.yaml``: musdb's own setup with our validation songs, so ``musdb.DB(split='valid')`` works."""
    import yaml

    from ..deps import import_musdb

    musdb = import_musdb()
    with open(os.path.join(musdb.__path__[0], "configs", "mus.yaml")) as f:
        setup = yaml.safe_load(f)
    setup["validation_tracks"] = list(validation_names)
    setup["sample_rate"] = float(sample_rate)
    with open(root / SETUP_FILE, "w") as f:
        yaml.safe_dump(setup, f, sort_keys=False, allow_unicode=True)


def _folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def generate_toy_dataset(
    root: str | os.PathLike | None = None,
    n_train: int = 16,
    n_valid: int = 4,
    n_test: int = 6,
    duration: float = 10.0,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write a toy dataset in the MUSDB18-HQ WAV layout and return its summary.

    ``root/train/<Artist - Title>/{mixture,vocals,drums,bass,other}.wav`` holds the train and
    validation songs, ``root/test/...`` the test songs; ``root/mus.yaml`` lists the validation songs
    for ``musdb.DB(root, is_wav=True, setup_file="mus.yaml", subsets="train", split="valid")``;
    ``root/toy.json`` records the parameters and each song's plan.

    Idempotent: if ``root`` already holds a complete dataset made with the same parameters, it is
    returned as is (``summary["reused"]`` is True). Anything else at ``root`` is an
    :class:`OutputExistsError`, unless ``overwrite=True`` and it is a toy dataset (it has a
    ``toy.json``): user data that is not a toy dataset is never deleted.

    The songs are written into a hidden temporary folder next to ``root`` and renamed at the end,
    so an interrupted run never leaves a half-written dataset. ``workers`` processes (default: all
    CPU cores) render songs in parallel; the result does not depend on their number.
    """
    from ..paths import data_dir

    root = Path(root) if root is not None else data_dir() / "toy"
    counts = {"train": int(n_train), "valid": int(n_valid), "test": int(n_test)}
    if min(counts.values()) < 0 or counts["train"] + counts["test"] == 0:
        raise ValueError(f"need a non-negative number of songs per split and some songs, got {counts}")
    params = _params(seed, n_train, n_valid, n_test, duration, sample_rate)

    if _matches(root, params):
        return {**summarize_dataset(root), "reused": True}
    if root.exists():
        manifest = _read_manifest(root) if root.is_dir() else None
        if manifest is None and root.is_dir() and not any(root.iterdir()):
            pass  # an empty folder: fill it
        elif manifest is None:
            raise OutputExistsError(
                f"{root} exists and is not a toy dataset (no {MANIFEST}); refusing to write there or "
                "delete it. Choose another root, or move that folder away."
            )
        elif not overwrite:
            what = ("made with other parameters" if manifest.get("params") != params
                    else "with missing files")
            raise OutputExistsError(
                f"{root} holds a toy dataset {what} (found {manifest.get('params')}, asked for "
                f"{params}); pass overwrite=True (CLI: --force) to replace it, or choose another root."
            )

    start = time.perf_counter()
    plans = _dataset_plans(seed, counts, duration)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes a private folder; the dataset is ordinary data
        jobs = [(plan, str(tmp / _SUBSET[split] / plan.name), int(sample_rate)) for split, plan in plans]
        _run_jobs(jobs, workers, progress)
        (tmp / "test").mkdir(exist_ok=True)  # musdb walks both subsets
        (tmp / "train").mkdir(exist_ok=True)
        _write_setup_file(tmp, [p.name for split, p in plans if split == "valid"], int(sample_rate))
        manifest = {
            "generator": "mssbook.data.toy",
            "generator_version": GENERATOR_VERSION,
            "params": params,
            "sources": list(SOURCES),
            "generation_seconds": round(time.perf_counter() - start, 2),
            "songs": [{"subset": _SUBSET[split], "split": split, **plan.to_dict()} for split, plan in plans],
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
        if _matches(root, params):  # another process finished the same dataset meanwhile
            shutil.rmtree(tmp)
            return {**summarize_dataset(root), "reused": True}
        _replace_dir(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**summarize_dataset(root), "reused": False}


def _run_jobs(jobs: list[tuple], workers: int | None, progress: bool) -> None:
    """Render and write every song, in worker processes when there are several cores and songs.

    Linux forks the workers: they start at once and need no ``if __name__ == "__main__":`` guard
    in the caller's script (they only run numpy/scipy, so torch threads in the parent are no
    concern). Elsewhere workers are spawned; if that fails (typically a script without the guard),
    the remaining songs are rendered here, one after the other, with a warning.
    """
    import concurrent.futures as cf
    import multiprocessing
    import sys
    import warnings

    from tqdm.auto import tqdm

    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    workers = max(1, min(workers, len(jobs)))
    done: set[int] = set()
    bar = tqdm(total=len(jobs), desc="toy songs", unit="song", disable=not progress)
    try:
        if workers > 1:
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            try:
                with cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
                    futures = {pool.submit(_write_song, *job): i for i, job in enumerate(jobs)}
                    try:
                        for fut in cf.as_completed(futures):
                            fut.result()
                            done.add(futures[fut])
                            bar.update()
                    except BaseException:
                        for fut in futures:
                            fut.cancel()
                        raise
            except cf.process.BrokenProcessPool as exc:
                warnings.warn(f"toy songs: worker processes failed ({exc}); rendering in this process "
                              "instead. In a script, put the call under `if __name__ == '__main__':`.",
                              RuntimeWarning, stacklevel=3)
        for i, job in enumerate(jobs):
            if i not in done:
                _write_song(*job)
                bar.update()
    finally:
        bar.close()


def _replace_dir(tmp: Path, root: Path) -> None:
    """Move the finished dataset ``tmp`` to ``root``, replacing an old toy dataset or empty folder."""
    old = None
    if root.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".old", dir=root.parent))
        os.replace(root, old / "data")  # move aside first, so ``root`` is never half old, half new
    try:
        os.replace(tmp, root)
    except OSError:
        if old is not None:
            os.replace(old / "data", root)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def summarize_dataset(root: str | os.PathLike) -> dict[str, Any]:
    """Describe an existing toy dataset: per-split counts and names, seconds of audio, bytes on disk."""
    root = Path(root)
    manifest = _read_manifest(root)
    if manifest is None:
        raise DatasetError(f"{root} is not a toy dataset: {root / MANIFEST} is missing or unreadable. "
                           "Generate one with mssbook.data.toy.generate_toy_dataset().")
    if not _complete(root, manifest):
        raise DatasetError(f"toy dataset {root} is incomplete (missing WAV files); regenerate it "
                           "with generate_toy_dataset(..., overwrite=True).")
    params = manifest["params"]
    splits = {}
    for split in SPLITS:
        names = [s["name"] for s in manifest["songs"] if s["split"] == split]
        splits[split] = {"count": len(names), "names": names, "seconds": len(names) * params["duration"]}
    return {
        "root": str(root),
        "generator_version": manifest["generator_version"],
        "seed": params["seed"],
        "duration": params["duration"],
        "sample_rate": params["sample_rate"],
        "splits": splits,
        "total_seconds": sum(s["seconds"] for s in splits.values()),
        "bytes": _folder_bytes(root),
        "generation_seconds": manifest.get("generation_seconds"),
    }


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{seconds % 60:04.1f}s"


def format_summary(summary: dict[str, Any]) -> str:
    """A short table of a dataset summary, for the CLI and notebooks."""
    lines = [
        f"Toy dataset at {summary['root']}",
        f"  generator v{summary['generator_version']}, seed {summary['seed']}, "
        f"{summary['sample_rate']} Hz stereo, {summary['duration']:g} s per song",
        f"  {'split':<7}{'songs':>6}{'audio':>11}",
    ]
    for split, info in summary["splits"].items():
        where = "train/" if split != "test" else "test/"
        lines.append(f"  {split:<7}{info['count']:>6}{_minutes(info['seconds']):>11}   in {where}")
    total = sum(info["count"] for info in summary["splits"].values())
    lines.append(f"  {'total':<7}{total:>6}{_minutes(summary['total_seconds']):>11}")
    size = f"  {summary['bytes'] / 1e6:.1f} MB on disk"
    if summary.get("generation_seconds") is not None:
        size += f", generated in {summary['generation_seconds']:.1f} s"
    if summary.get("reused"):
        size += " (already there, not regenerated)"
    lines.append(size)
    return "\n".join(lines)


# =================================================================================================
# Sizes per profile
# =================================================================================================

def toy_sizes() -> dict[str, Any]:
    """Default dataset sizes: classroom size by default, a small set under ``MSSBOOK_PROFILE=ci``.

    CI songs are 6 s long because training excerpts are 6 s by default.
    """
    from .. import profile

    return profile.choose(
        default={"n_train": 16, "n_valid": 4, "n_test": 6, "duration": 10.0},
        ci={"n_train": 4, "n_valid": 2, "n_test": 2, "duration": 6.0},
    )


def default_toy_root() -> Path:
    """Where :func:`ensure_toy_dataset` keeps the toy set: one folder per profile, so both coexist."""
    from .. import profile
    from ..paths import data_dir

    return data_dir() / profile.choose(default="toy", ci="toy-ci")


def ensure_toy_dataset(root: str | os.PathLike | None = None, **overrides: Any) -> Path:
    """Return the root of the toy dataset, generating it first if it is not there yet.

    Sizes come from :func:`toy_sizes` updated with ``overrides`` (any argument of
    :func:`generate_toy_dataset`, e.g. ``seed=1``, ``progress=False``).
    """
    root = Path(root) if root is not None else default_toy_root()
    generate_toy_dataset(root, **{**toy_sizes(), **overrides})
    return root
