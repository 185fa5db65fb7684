"""Architecture figures drawn from the model object itself.

    >>> from mssbook import models
    >>> from mssbook.architecture import architecture_figure
    >>> fig = architecture_figure(models.create("umx", preset="paper"))

:func:`architecture_figure` runs **one forward pass** of the model's network for one target on a
short dummy input (``seconds`` of seeded noise, under ``torch.no_grad()`` and in eval mode, so no
BatchNorm statistics move), records the output shape of every drawn block with forward hooks (and
the models' own ``trace=`` dicts for the stages that are not modules, e.g. Open-Unmix's input
scaling), and draws boxes (block name, class, parameter count) joined by arrows labelled with the
measured tensor shapes. Nothing is typed in by hand: a changed preset changes the figure.

The layouts follow the papers' figures where that is cheap: Open-Unmix a column, X-UMX four
branches crossed by two averaging bridges, D3Net the band split into per-band and full-band MD3
U-Nets, the ISMIR 2020 U-Nets a U, BSRNN band split → band-sequence blocks → per-band masks, the
Wavenet its stacks of dilated layers with the receptive field. Anything else gets a column of its
network's top-level children. The parameter counts of the boxes add up to the network's own count.

matplotlib is optional (``pip install mssbook[notebooks]``); it is imported when a figure is drawn.
The figure is a plain :class:`matplotlib.figure.Figure` (not registered with pyplot): a notebook
shows it as a cell's value, ``fig.savefig(...)`` writes it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from .deps import import_matplotlib_pyplot
from .errors import MSSBookError

__all__ = ["architecture_figure", "Block", "figure_texts"]

_COLORS = {"io": "#e8e8e8", "norm": "#fff2cc", "dense": "#dae8fc", "rnn": "#d5e8d4", "conv": "#e1d5e7",
           "mix": "#f8cecc", "skip": "#ffe6cc"}


# --- measuring ---------------------------------------------------------------------------------------
def _count(*things) -> int:
    """Parameters of modules and tensors (each counted once)."""
    seen, total = set(), 0
    for thing in things:
        params = thing.parameters() if isinstance(thing, nn.Module) else [thing]
        for p in params:
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
    return total


def _shape(value) -> tuple[int, ...]:
    """The shape of a tensor, or of the first tensor of a tuple/list output (LSTM, Wavenet blocks)."""
    while isinstance(value, (tuple, list)):
        value = value[0]
    return tuple(int(n) for n in value.shape)


def _fmt(shape) -> str:
    return str(tuple(int(n) for n in shape))


@contextmanager
def _hooks(modules: dict[str, nn.Module]):
    """Record the output shapes of ``modules`` ({name: module}) during the block: {name: [shape per call]}."""
    shapes: dict[str, list] = {name: [] for name in modules}
    handles = []
    for name, module in modules.items():
        def hook(_module, _inputs, output, name=name):
            shapes[name].append(output)
        handles.append(module.register_forward_hook(hook))
    try:
        yield shapes
    finally:
        for handle in handles:
            handle.remove()
        for name, outputs in shapes.items():
            shapes[name] = [_shape(o) for o in outputs]


@contextmanager
def _evaluating(model: nn.Module):
    """Eval mode, no gradients and one CPU thread for the dummy pass (tiny tensors: more threads only
    wait for each other, badly so on a busy machine); the training flags and the thread count come
    back afterwards."""
    flags = {m: m.training for m in model.modules()}
    threads = torch.get_num_threads()
    model.eval()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            yield
    finally:
        torch.set_num_threads(threads)
        for m, flag in flags.items():
            m.training = flag


def _noise(model: nn.Module, *shape: int) -> torch.Tensor:
    """Seeded noise in [-0.5, 0.5) on the model's device (the global random state is untouched)."""
    generator = torch.Generator().manual_seed(0)
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else "cpu"
    return (torch.rand(*shape, generator=generator) - 0.5).to(device)


# --- drawing -----------------------------------------------------------------------------------------
@dataclass
class Block:
    """One drawn box: its name, what it is (class, sizes), its parameters and its output shape."""

    name: str
    kind: str
    params: int
    shape: tuple[int, ...] | None = None
    color: str = "dense"
    xy: tuple[float, float] = (0.0, 0.0)
    size: tuple[float, float] = (2.6, 0.62)
    text: str | None = None  # the box's text when not the three lines below

    def lines(self) -> str:
        return self.text or f"{self.name}\n{self.kind}\n{self.params:,d} params"


@dataclass
class _Canvas:
    width: float
    height: float
    title: str
    blocks: dict[str, Block] = field(default_factory=dict)
    arrows: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def add(self, key: str, block: Block) -> Block:
        self.blocks[key] = block
        return block

    def arrow(self, src: str, dst: str, label: str | None = None, style: str = "-", bend: float = 0.0,
              sides: tuple[str, str] | None = None) -> None:
        self.arrows.append((src, dst, label, style, bend, sides))

    def note(self, x: float, y: float, text: str, **kw) -> None:
        self.notes.append((x, y, text, kw))

    @staticmethod
    def _anchor(block: Block, side: str) -> tuple[float, float]:
        (x, y), (w, h) = block.xy, block.size
        return {"top": (x, y + h / 2), "bottom": (x, y - h / 2), "left": (x - w / 2, y),
                "right": (x + w / 2, y)}[side]

    def _sides(self, a: Block, b: Block) -> tuple[str, str]:
        dx, dy = b.xy[0] - a.xy[0], b.xy[1] - a.xy[1]
        if abs(dy) >= (a.size[1] + b.size[1]) / 2:
            return ("bottom", "top") if dy < 0 else ("top", "bottom")
        return ("right", "left") if dx > 0 else ("left", "right")

    def draw(self):
        import_matplotlib_pyplot()  # the clear error when matplotlib is missing
        from matplotlib.figure import Figure
        from matplotlib.patches import FancyBboxPatch

        fig = Figure(figsize=(self.width, self.height))
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.set_xlim(0, self.width)
        ax.set_ylim(0, self.height)
        ax.axis("off")
        ax.text(self.width / 2, self.height - 0.12, self.title, ha="center", va="top", fontsize=10,
                fontweight="bold", wrap=True)
        for block in self.blocks.values():
            (x, y), (w, h) = block.xy, block.size
            ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                        facecolor=_COLORS.get(block.color, block.color), edgecolor="#444444",
                                        linewidth=0.8))
            ax.text(x, y, block.lines(), ha="center", va="center", fontsize=7, linespacing=1.15)
        for src, dst, label, style, bend, sides in self.arrows:
            a, b = self.blocks[src], self.blocks[dst]
            side_a, side_b = sides or self._sides(a, b)
            start, end = self._anchor(a, side_a), self._anchor(b, side_b)
            ax.annotate("", xy=end, xytext=start,
                        arrowprops=dict(arrowstyle="-|>", linestyle=style, color="#333333", lw=0.9,
                                        shrinkA=1, shrinkB=1, connectionstyle=f"arc3,rad={bend}"))
            if label:
                # the middle of the (quadratic Bézier) arc: the chord's midpoint pushed out by bend / 2
                dx, dy = end[0] - start[0], end[1] - start[1]
                mx, my = (start[0] + end[0]) / 2 + bend * dy / 2, (start[1] + end[1]) / 2 - bend * dx / 2
                ax.text(mx, my, label, ha="center", va="center", fontsize=6.5,
                        color="#1f3d7a", bbox=dict(boxstyle="round,pad=0.1", facecolor="white", edgecolor="none",
                                                   alpha=0.9))
        for x, y, text, kw in self.notes:
            ax.text(x, y, text, **{"ha": "center", "va": "center", "fontsize": 7, **kw})
        fig.blocks = dict(self.blocks)  # what was drawn, for tests and for readers who want the numbers
        return fig


def figure_texts(fig) -> list[str]:
    """Every text drawn on ``fig`` (titles, boxes, arrow labels, notes)."""
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _column(canvas: _Canvas, keys: list[str], x: float, top: float, step: float) -> None:
    """Place ``keys`` top to bottom at ``x`` and join them with arrows labelled by the source's shape."""
    for i, key in enumerate(keys):
        canvas.blocks[key].xy = (x, top - i * step)
    for a, b in zip(keys, keys[1:]):
        canvas.arrow(a, b, _fmt(canvas.blocks[a].shape))


def _network_for(model, target: str | None) -> tuple[str, nn.Module]:
    nets = getattr(model, "target_models", None)
    if nets is None:
        raise MSSBookError(f"{type(model).__name__} has no per-target networks (target_models)")
    if target is None:
        target = next(iter(nets))
    if target not in nets:
        raise MSSBookError(f"no target {target!r} in this model; targets: {list(nets)}")
    return target, nets[target]


#: seconds of dummy input when ``seconds`` is None: a second for Open-Unmix and X-UMX (about 40
#: frames); half a second for the convolutional D3Net and U-Nets (their full-resolution 2-D convs are
#: the costly part); 0.15 s for BSRNN, whose 2 × 12 LSTM passes are the slowest; the Wavenet: one
#: training fragment (receptive field + target field − 1 samples). A paper-size figure then takes
#: about a second on one busy CPU core.
DEFAULT_SECONDS = 1.0
CONV_SECONDS = 0.5
BSRNN_SECONDS = 0.15


def _samples(model, seconds: float | None, minimum: int = 0, default: float = DEFAULT_SECONDS) -> int:
    """Samples of dummy input: ``seconds`` (None: ``default``) at the model's rate, at least ``minimum``."""
    seconds = default if seconds is None else seconds
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise MSSBookError(f"seconds must be a positive duration of the dummy input (or None); got {seconds!r}")
    return max(int(round(seconds * model.sample_rate)), int(minimum))


def _per_target_note(model, network: nn.Module, target: str) -> str:
    n = len(model.target_models)
    return (f"one of {n} networks ({target}): {_count(network):,d} params; "
            f"whole model {model.num_parameters():,d} params")


# --- Open-Unmix: a column ------------------------------------------------------------------------------
def _umx(model, seconds: float, target: str | None):
    target, net = _network_for(model, target)
    audio = _noise(model, 1, model.nb_channels, _samples(model, seconds, model.n_fft))
    mag = model.magnitudes(audio)  # (B, C', 2049, T): the training front end (center=False)
    trace: dict = {}
    with _evaluating(model), _hooks({"fc1": net.fc1, "bn1": net.bn1, "lstm": net.lstm, "fc2": net.fc2,
                                     "bn2": net.bn2, "fc3": net.fc3, "bn3": net.bn3}) as hooked:
        out = net(mag, trace=trace)
    lstm = net.lstm
    direction = "bidirectional" if lstm.bidirectional else "unidirectional"
    c = _Canvas(8.0, 9.6, f"Open-Unmix ({model.name or 'umx'}, target {target}): "
                          f"{_count(net):,d} parameters per target, {model.num_parameters():,d} in the model")
    H = net.hidden_size
    c.add("in", Block("mixture magnitude |X|", f"STFT n_fft {model.n_fft}, hop {model.n_hop}", 0, _shape(mag), "io"))
    c.add("scale", Block("input scaling", f"crop to {net.max_bin} bins, (x + mean) · scale", 
                         _count(net.input_mean, net.input_scale), _shape(trace["normalized"]), "norm"))
    c.add("enc", Block("fc1 → bn1 → tanh", f"Linear {net.fc1.in_features}→{H} + BatchNorm1d",
                       _count(net.fc1, net.bn1), hooked["bn1"][0], "dense"))
    c.add("lstm", Block(f"{lstm.num_layers}-layer {direction} LSTM",
                        f"LSTM {lstm.hidden_size} units per direction", _count(lstm), hooked["lstm"][0], "rnn"))
    c.add("skip", Block("skip: concat[encoder, LSTM]", "torch.cat", 0, _shape(trace["skip"]), "skip"))
    c.add("dec", Block("fc2 → bn2 → ReLU", f"Linear {net.fc2.in_features}→{H} + BatchNorm1d",
                       _count(net.fc2, net.bn2), hooked["bn2"][0], "dense"))
    c.add("fc3", Block("fc3 → bn3", f"Linear {H}→{net.fc3.out_features} + BatchNorm1d",
                       _count(net.fc3, net.bn3), hooked["bn3"][0], "dense"))
    c.add("mask", Block("output scaling → ReLU = mask", "x · scale + mean, ReLU",
                        _count(net.output_scale, net.output_mean), _shape(trace["mask"]), "norm"))
    c.add("out", Block("estimate = mask × |X|", "target magnitude", 0, _shape(out), "mix"))
    keys = ["in", "scale", "enc", "lstm", "skip", "dec", "fc3", "mask", "out"]
    _column(c, keys, 3.6, 8.75, 1.02)
    # the skip connection goes around the LSTM
    c.arrow("enc", "skip", f"skip {_fmt(c.blocks['enc'].shape)}", style="--", bend=-0.55, sides=("right", "right"))
    c.note(3.6, 0.18, f"dummy input: {audio.shape[-1]} samples of noise, {mag.shape[-1]} frames; shapes measured "
           "with hooks",
           fontsize=6.5, color="#555555")
    return c


# --- X-UMX: four branches, two bridges -----------------------------------------------------------------
def _xumx(model, seconds: float, target: str | None):
    audio = _noise(model, 1, model.nb_channels, _samples(model, seconds, model.n_fft))
    mag = model.magnitudes(audio)
    branches = model.target_models
    trace: dict = {}
    hooked_modules = {f"{t}.lstm": b.lstm for t, b in branches.items()}
    hooked_modules.update({f"{t}.bn3": b.bn3 for t, b in branches.items()})
    with _evaluating(model), _hooks(hooked_modules) as hooked:
        out = model(mag, trace=trace)
    names = list(branches)
    S = len(names)
    width = max(10.0, 2.9 * S + 1.0)
    c = _Canvas(width, 10.2, f"X-UMX ({model.name or 'xumx'}): {S} Open-Unmix branches"
                             f"{', two averaging bridges' if model.bridges else ' (bridges off)'}; "
                             f"{model.num_parameters():,d} parameters")
    xs = [width / 2 + (i - (S - 1) / 2) * 2.85 for i in range(S)]
    rows = {"enc": 8.1, "bridge1": 7.0, "lstm": 5.9, "skip": 4.8, "bridge2": 3.7, "dec": 2.6, "est": 1.5}
    c.add("in", Block("mixture magnitude |X|", f"STFT n_fft {model.n_fft}, hop {model.n_hop}", 0, _shape(mag),
                      "io", (width / 2, 9.25)))
    for i, (t, b) in enumerate(branches.items()):
        x, w = xs[i], (2.6, 0.62)
        c.add(f"enc{i}", Block(f"{t}: scaling, fc1, bn1, tanh", f"Linear {b.fc1.in_features}→{b.hidden_size}",
                               _count(b.input_mean, b.input_scale, b.fc1, b.bn1), _shape(trace["encoder"][i]),
                               "dense", (x, rows["enc"]), w))
        c.add(f"lstm{i}", Block(f"{t}: {b.lstm.num_layers}-layer BLSTM", f"LSTM {b.lstm.hidden_size} per direction",
                                _count(b.lstm), hooked[f"{t}.lstm"][0], "rnn", (x, rows["lstm"]), w))
        c.add(f"skip{i}", Block(f"{t}: concat[h, LSTM]", "torch.cat", 0, _shape(trace["skip"][i]), "skip",
                                (x, rows["skip"]), w))
        c.add(f"dec{i}", Block(f"{t}: fc2, bn2, fc3, bn3, scaling",
                               f"Linear {b.fc2.in_features}→{b.hidden_size}→{b.fc3.out_features}",
                               _count(b.fc2, b.bn2, b.fc3, b.bn3, b.output_scale, b.output_mean),
                               _shape(trace["mask"][i]), "dense", (x, rows["dec"]), w))
        c.add(f"est{i}", Block(f"{t} = mask × |X|", "magnitude estimate", 0, _shape(trace["mask"][i]), "mix",
                               (x, rows["est"]), w))
        c.arrow("in", f"enc{i}", _fmt(mag.shape) if i == 0 else None)
        c.arrow(f"enc{i}", f"skip{i}", None, style="--", bend=0.35 if i < S / 2 else -0.35,
                sides=("left", "left") if i < S / 2 else ("right", "right"))
        c.arrow(f"lstm{i}", f"skip{i}", _fmt(hooked[f"{t}.lstm"][0]) if i == 0 else None)
        c.arrow(f"dec{i}", f"est{i}", _fmt(hooked[f"{t}.bn3"][0]) if i == 0 else None)
    if model.bridges:
        span = (xs[-1] - xs[0]) + 2.6
        c.add("bridge1", Block("bridge 1: mean of the encodings h̄", "no parameters", 0, _shape(trace["lstm_input"][0]),
                               "skip", (width / 2, rows["bridge1"]), (span, 0.55)))
        c.add("bridge2", Block("bridge 2: mean of the concatenations z̄", "no parameters", 0,
                               _shape(trace["decoder_input"][0]), "skip", (width / 2, rows["bridge2"]), (span, 0.55)))
        for i in range(S):
            c.arrow(f"enc{i}", "bridge1", _fmt(trace["encoder"][i].shape) if i == 0 else None,
                    sides=("bottom", "top"))
            c.arrow("bridge1", f"lstm{i}", f"h̄ {_fmt(trace['lstm_input'][i].shape)}" if i == 0 else None,
                    sides=("bottom", "top"))
            c.arrow(f"skip{i}", "bridge2", _fmt(trace["skip"][i].shape) if i == 0 else None, sides=("bottom", "top"))
            c.arrow("bridge2", f"dec{i}", f"z̄ {_fmt(trace['decoder_input'][i].shape)}" if i == 0 else None,
                    sides=("bottom", "top"))
    else:
        for i in range(S):
            c.arrow(f"enc{i}", f"lstm{i}", _fmt(trace["encoder"][i].shape) if i == 0 else None)
            c.arrow(f"skip{i}", f"dec{i}", _fmt(trace["skip"][i].shape) if i == 0 else None)
    c.add("out", Block("all estimates", "stacked", 0, _shape(out), "io", (width / 2, 0.55), (2.6, 0.55)))
    for i in range(S):
        c.arrow(f"est{i}", "out", _fmt(out.shape) if i == 0 else None)
    return c


# --- D3Net: band split, per-band and full-band MD3 U-Nets -------------------------------------------------
def _md3_kind(net) -> str:
    ks = [blk.growth for blk in [*net.down, net.bottleneck, *net.up]]
    return f"MD3UNet, {net.n_down} down levels\nk = {ks}"


def _d3net(model, seconds: float, target: str | None):
    target, net = _network_for(model, target)
    audio = _noise(model, 1, model.nb_channels, _samples(model, seconds, model.n_fft, CONV_SECONDS))
    mag = model.magnitudes(audio)  # (B, C, 2049, T)
    frames = max(net.frame_multiple, mag.shape[-1] // net.frame_multiple * net.frame_multiple)
    mag = mag[..., :frames] if mag.shape[-1] >= frames else torch.nn.functional.pad(mag, (0, frames - mag.shape[-1]))
    modules = {f"init{b}": m for b, m in enumerate(net.band_init)}
    modules.update({f"net{b}": m for b, m in enumerate(net.band_nets)})
    modules.update({f"match{b}": m for b, m in enumerate(net.band_match)})
    modules.update(full_init=net.full_init, full_net=net.full_net, final=net.final)
    trace: dict = {}
    with _evaluating(model), _hooks(modules) as hooked:
        out = net(mag, trace=trace)
    n_bands = len(net.band_nets)
    cols = n_bands + 1
    width = max(9.0, 3.3 * cols + 1.0)
    c = _Canvas(width, 12.4, f"D3Net ({model.name or 'd3net'}, target {target}): {_count(net):,d} parameters per "
                             f"target, {model.num_parameters():,d} in the model")
    mid = width / 2
    xs = [mid + (i - (cols - 1) / 2) * 3.25 for i in range(cols)]
    box = (3.1, 0.62)
    c.add("in", Block("mixture magnitude |X|ᵀ", f"STFT n_fft {model.n_fft}; (B, C, T, F)", 0,
                      _shape(trace["input"]), "io", (mid, 11.35), box))
    c.add("norm", Block("input scaling", f"bins < {net.valid_bins}: (x − offset) / scale",
                        _count(net.in_offset, net.in_scale), _shape(trace["normalized"]), "norm", (mid, 10.4), box))
    c.arrow("in", "norm", _fmt(trace["input"].shape))
    for b in range(n_bands):
        lo, hi = net.edges[b], net.edges[b + 1]
        x = xs[b]
        c.add(f"init{b}", Block(f"band {b}: bins [{lo}, {hi})", f"Conv2d 3×3 → {net.band_init[b].out_channels}",
                                _count(net.band_init[b]), hooked[f"init{b}"][0], "conv", (x, 9.1), box))
        c.add(f"net{b}", Block(f"band {b} MD3 U-Net", _md3_kind(net.band_nets[b]), _count(net.band_nets[b]),
                               hooked[f"net{b}"][0], "conv", (x, 7.9), (3.1, 0.8)))
        match = net.band_match[b]
        is_id = isinstance(match, nn.Identity)
        c.add(f"match{b}", Block(f"band {b} channel match", "Identity" if is_id else
                                 f"BatchNorm2d → Conv2d 1×1 → {net.band_channels}", _count(match),
                                 hooked[f"match{b}"][0], "norm", (x, 6.7), box))
        c.arrow("norm", f"init{b}", _fmt(trace["normalized"].shape) if b == 0 else None)
        c.arrow(f"init{b}", f"net{b}", _fmt(hooked[f"init{b}"][0]))
        c.arrow(f"net{b}", f"match{b}", _fmt(hooked[f"net{b}"][0]))
    bands_x = sum(xs[:n_bands]) / n_bands
    c.add("bands", Block("concat bands along F", "torch.cat", 0, _shape(trace["bands"]), "skip", (bands_x, 5.55), box))
    for b in range(n_bands):
        c.arrow(f"match{b}", "bands", _fmt(hooked[f"match{b}"][0]))
    x = xs[-1]
    c.add("full_init", Block(f"full band: bins [0, {net.valid_bins})", f"Conv2d 3×3 → {net.full_init.out_channels}",
                             _count(net.full_init), hooked["full_init"][0], "conv", (x, 9.1), box))
    c.add("full_net", Block("full-band MD3 U-Net", _md3_kind(net.full_net), _count(net.full_net),
                            hooked["full_net"][0], "conv", (x, 7.9), (3.1, 0.8)))
    c.arrow("norm", "full_init")
    c.arrow("full_init", "full_net", _fmt(hooked["full_init"][0]))
    c.add("concat", Block("concat bands + full band", "along channels", 0, _shape(trace["concat"]), "skip",
                          (mid, 4.4), box))
    c.arrow("bands", "concat", _fmt(trace["bands"].shape))
    c.arrow("full_net", "concat", _fmt(hooked["full_net"][0]))
    c.add("final", Block("final D2 block", f"MultidilatedD2Block, {len(net.final.layers)} layers",
                         _count(net.final), hooked["final"][0], "conv", (mid, 3.25), box))
    c.add("gate", Block("gated output, scaling, ReLU", "BN; σ(Conv 1×1) ⊙ Conv 1×1; x·scale + bias",
                        _count(net.gate_norm, net.gate_conv, net.filter_conv, net.decode_scale, net.decode_bias),
                        _shape(trace["decoded"]), "norm", (mid, 2.1), (3.6, 0.62)))
    c.add("out", Block("estimate", f"+ raw mixture bins ≥ {net.valid_bins}", 0, _shape(out), "io", (mid, 0.95), box))
    c.arrow("concat", "final", _fmt(trace["concat"].shape))
    c.arrow("final", "gate", _fmt(hooked["final"][0]))
    c.arrow("gate", "out", _fmt(trace["decoded"].shape))
    c.note(mid, 0.3, f"dummy input: {frames} frames (a multiple of {net.frame_multiple}); shapes measured with hooks",
           fontsize=6.5, color="#555555")
    return c


# --- the ISMIR 2020 U-Nets: a U ------------------------------------------------------------------------
def _unet(model, seconds: float, target: str | None):
    target, net = _network_for(model, target)
    audio = _noise(model, 1, model.nb_channels, _samples(model, seconds, model.n_fft, CONV_SECONDS))
    spec = model.spectrogram(model.stft(audio))  # (B, C', T, F)
    frames = max(net.time_multiple, spec.shape[-2] // net.time_multiple * net.time_multiple)
    spec = spec[..., :frames, :] if spec.shape[-2] >= frames else \
        torch.nn.functional.pad(spec, (0, 0, 0, frames - spec.shape[-2]))
    n = len(net.encoders)
    modules = {"first": net.first_conv, "mid": net.mid_block, "last": net.last_conv}
    modules.update({f"enc{i}": m for i, m in enumerate(net.encoders)})
    modules.update({f"down{i}": m for i, m in enumerate(net.downsamplings)})
    modules.update({f"up{j}": m for j, m in enumerate(net.upsamplings)})
    modules.update({f"dec{j}": m for j, m in enumerate(net.decoders)})
    with _evaluating(model), _hooks(modules) as hooked:
        out = net(spec)
    block = type(net.mid_block).__name__
    dx, dy = 0.62, 1.0  # per level: boxes step right (encoders) / left (decoders) and down
    width = max(10.0, 2 * (1.6 + n * dx) + 3.5)
    height = dy * (n + 2) + 1.9
    c = _Canvas(width, height, f"{model.label} ({block} blocks, target {target}): {_count(net):,d} parameters "
                               f"per target, {model.num_parameters():,d} in the model")
    mid = width / 2
    top = height - 1.0
    c.add("in", Block("mixture spectrogram", f"{model.spec_type}, (B, C', T, F)", 0, _shape(spec), "io",
                      (1.6, top)))
    c.add("first", Block("first conv 1×2 → BN → ReLU", f"Conv2d {net.first_conv[0].in_channels}→"
                         f"{net.first_conv[0].out_channels}", _count(net.first_conv), hooked["first"][0], "conv",
                         (1.6, top - dy)))
    c.arrow("in", "first", _fmt(spec.shape))
    prev = "first"
    for i in range(n):
        c.add(f"enc{i}", Block(f"encoder {i} + down", f"{type(net.encoders[i]).__name__} + "
                               f"{type(net.downsamplings[i]).__name__}", _count(net.encoders[i], net.downsamplings[i]),
                               hooked[f"enc{i}"][0], "conv", (1.6 + (i + 1) * dx, top - (i + 2) * dy)))
        c.arrow(prev, f"enc{i}", _fmt(hooked[prev][0]) if prev == "first" else _fmt(hooked[f"down{i - 1}"][0]))
        prev = f"enc{i}"
    c.add("mid", Block("mid block", block, _count(net.mid_block), hooked["mid"][0], "conv",
                       (mid, top - (n + 2) * dy)))
    c.arrow(prev, "mid", _fmt(hooked[f"down{n - 1}"][0]))
    prev = "mid"
    for j in range(n):
        level = n - 1 - j
        x = width - 1.6 - (level + 1) * dx
        c.add(f"dec{j}", Block(f"up + concat skip + decoder {j}", f"{type(net.upsamplings[j]).__name__} + "
                               f"{type(net.decoders[j]).__name__}", _count(net.upsamplings[j], net.decoders[j]),
                               hooked[f"dec{j}"][0], "conv", (x, top - (level + 2) * dy)))
        c.arrow(prev, f"dec{j}", _fmt(hooked[prev if prev == "mid" else prev][0]))
        c.arrow(f"enc{level}", f"dec{j}", f"skip {_fmt(hooked[f'enc{level}'][0])}", style="--")
        prev = f"dec{j}"
    c.add("last", Block("last conv 1×2 → activation", f"Conv2d {net.last_conv.in_channels}→"
                        f"{net.last_conv.out_channels}, {type(net.activation).__name__}",
                        _count(net.last_conv, net.activation), _shape(out), "conv", (width - 1.6, top - dy)))
    c.arrow(prev, "last", _fmt(hooked[prev][0]))
    c.add("out", Block("target spectrogram", model.spec_est_mode, 0, _shape(out), "io", (width - 1.6, top)))
    c.arrow("last", "out", _fmt(out.shape))
    c.note(mid, 0.25, f"dummy input: {frames} frames (a multiple of {net.time_multiple}); shapes measured with hooks",
           fontsize=6.5, color="#555555")
    return c


# --- BSRNN: band split → band-sequence blocks → per-band masks ----------------------------------------
def _bsrnn(model, seconds: float, target: str | None):
    target, net = _network_for(model, target)
    audio = _noise(model, 1, model.nb_channels, _samples(model, seconds, model.n_fft, BSRNN_SECONDS))
    spec = model.spectrogram(audio)  # (B, C, F, T) complex
    flat = spec.reshape(-1, *spec.shape[-2:])  # (B·C, F, T): every channel on its own
    blocks = list(net.blocks)
    modules = {"split": net.band_split, "masks": net.mask_estimation}
    modules.update({f"block{i}": m for i, m in enumerate(blocks)})
    trace: dict = {}
    with _evaluating(model), _hooks(modules) as hooked:
        out = net(flat, trace=trace)
    R = len(blocks)
    shown = list(range(R)) if R <= 5 else [0, 1, None, R - 1]
    widths = net.band_split.widths
    K, N = len(widths), net.band_split.bands[0][1].out_channels
    c = _Canvas(9.6, 1.05 * (len(shown) + 5) + 1.0, f"BSRNN ({model.name or 'bsrnn'}, target {target}, band scheme "
                f"{model.band_schemes[target]}): {_count(net):,d} parameters per target, "
                f"{model.num_parameters():,d} in the model")
    c.add("in", Block("mixture STFT, channels as batch", f"complex, n_fft {model.n_fft}, hop {model.n_hop}", 0,
                      _shape(flat), "io"))
    c.add("ri", Block("stack [Re, Im]", "torch.stack", 0, _shape(trace["spec_ri"]), "io"))
    c.add("split", Block(f"band split: K = {K} bands → N = {N}",
                         f"{K} × (GroupNorm → Conv1d 2·BW→{N}), BW {min(widths)}…{max(widths)} bins",
                         _count(net.band_split), hooked["split"][0], "dense"))
    keys = ["in", "ri", "split"]
    for i in shown:
        if i is None:
            hidden = [blocks[k] for k in range(2, R - 1)]
            c.add("more", Block(f"… {len(hidden)} more blocks …", "BandSequenceBlock", _count(*hidden),
                                hooked[f"block{R - 2}"][0], "rnn"))
            keys.append("more")
        else:
            c.add(f"block{i}", Block(f"band-sequence block {i + 1} of {R}",
                                     f"BLSTM over time (B'·K, N, T), then over bands (B'·T, N, K)",
                                     _count(blocks[i]), hooked[f"block{i}"][0], "rnn"))
            keys.append(f"block{i}")
    c.add("masks", Block("mask estimation, per band", f"{K} × (GroupNorm → MLP tanh → 4·BW) → GLU",
                         _count(net.mask_estimation), hooked["masks"][0], "dense"))
    c.add("out", Block("complex mask M (Ŝ = M ⊙ X)", "torch.complex(Re, Im)", 0, _shape(out), "mix"))
    keys += ["masks", "out"]
    for key in keys:
        c.blocks[key].size = (3.6, 0.66)
    _column(c, keys, 3.6, c.height - 1.0, 1.05)
    runs: list[list[int]] = []  # the band widths, run-length coded: [[count, bins], ...] from low to high
    for w in widths:
        if runs and runs[-1][1] == w:
            runs[-1][0] += 1
        else:
            runs.append([1, w])
    c.note(7.7, c.height / 2, f"{K} bands, low to high\n(count × bins)\n" + "\n".join(f"{n} × {w}" for n, w in runs),
           fontsize=6.5, color="#555555")
    return c


# --- Wavenet: stacks of dilated layers -------------------------------------------------------------------
def _wavenet(model, seconds: float, target: str | None):
    net = model.network
    R = net.receptive_field
    length = _samples(model, seconds, R, model.input_length / model.sample_rate)
    audio = _noise(model, 1, 1, length)
    modules = {"initial": net.initial, "head": net.head, "output": net.output}
    modules.update({f"block{i}": m for i, m in enumerate(net.blocks)})
    skip_shapes: list = []
    handles = [b.register_forward_hook(lambda _m, _i, o: skip_shapes.append(_shape(o[1]))) for b in net.blocks]
    try:
        with _evaluating(model), _hooks(modules) as hooked:
            out = net(audio)
    finally:
        for h in handles:
            h.remove()
    D, S = len(net.dilations), net.stacks
    width = max(10.0, 1.05 * D + 3.2)
    height = 1.0 * S + 6.4
    sr = model.sample_rate
    c = _Canvas(width, height, f"Wavenet ({model.name or 'wavenet'}, {model.mode}): {model.num_parameters():,d} "
                f"parameters; receptive field R = {R} samples ({1000 * R / sr:.0f} ms at {sr} Hz), "
                f"exactly {net.exact_receptive_field} with the edge convs")
    mid = width / 2
    c.add("in", Block("mixture waveform, mono", f"{length} samples ≥ R", 0, _shape(audio), "io", (mid, height - 1.0)))
    c.add("initial", Block("initial conv", f"Conv1d 1→{net.initial.out_channels}, k {net.kernel_size}",
                           _count(net.initial), hooked["initial"][0], "conv", (mid, height - 2.0)))
    c.arrow("in", "initial", _fmt(audio.shape))
    x0 = mid - (D - 1) / 2 * 1.05
    for s in range(S):
        y = height - 3.1 - s * 1.0
        for i in range(D):
            k = s * D + i
            blk = net.blocks[k]  # one GatedResidualBlock: (B, res, N) → (B, res, N) and a skip
            c.add(f"b{k}", Block(f"d={blk.dilation}", "GatedResidualBlock", _count(blk), hooked[f"block{k}"][0],
                                 "rnn", (x0 + i * 1.05, y), (0.95, 0.62),
                                 text=f"d={blk.dilation}\ngated\n{_count(blk):,d}"))
            if i:
                c.arrow(f"b{k - 1}", f"b{k}")
        c.note(x0 - 0.95, y, f"stack {s + 1}", fontsize=7, ha="right")
        if s:
            c.arrow(f"b{s * D - 1}", f"b{s * D}", None, style=":", sides=("bottom", "top"))
    c.arrow("initial", "b0", _fmt(hooked["initial"][0]))
    n_blocks = S * D
    sum_y = height - 3.1 - S * 1.0 - 0.2
    c.add("sum", Block(f"Σ of the {n_blocks} skips", f"each cropped to the target field ± {net.target_padding}", 0,
                       skip_shapes[-1], "skip", (mid, sum_y)))
    last = hooked[f"block{n_blocks - 1}"][0]  # the residual path's output
    c.arrow(f"b{n_blocks - 1}", "sum", f"skip {_fmt(skip_shapes[-1])}; residual {_fmt(last)}",
            sides=("bottom", "top"))
    heads = [m for m in net.head if isinstance(m, nn.Conv1d)]
    c.add("head", Block("head: ReLU → conv … ", " → ".join(str(m.out_channels) for m in heads) or "none",
                        _count(net.head), hooked["head"][0] if hooked["head"] else skip_shapes[-1], "conv",
                        (mid - 2.9, sum_y - 1.1)))
    c.add("output", Block("output conv, linear", f"Conv1d → {net.output.out_channels} heads "
                          f"({', '.join(model.heads)})", _count(net.output), _shape(out), "conv",
                          (mid + 2.9, sum_y - 1.1)))
    c.arrow("sum", "head", _fmt(skip_shapes[-1]))
    c.arrow("head", "output", _fmt(c.blocks["head"].shape))
    c.note(mid, 0.3, f"blocks: dilated Conv1d k {net.kernel_size} → tanh·σ → 1×1 Conv1d (residual + skip); "
           f"output {out.shape[-1]} samples = input − R + 1 + 2·{net.target_padding}", fontsize=6.5, color="#555555")
    return c


# --- anything else: a column of the network's top-level children ------------------------------------------
def _generic(model, seconds: float, target: str | None, example_input=None):
    nets = getattr(model, "target_models", None)
    network = _network_for(model, target)[1] if nets is not None else model
    children = dict(network.named_children())
    if not children:
        raise MSSBookError(f"{type(model).__name__} has no submodules to draw")
    if example_input is None:
        if not hasattr(model, "separate") or not hasattr(model, "sample_rate"):
            raise MSSBookError(f"cannot make a dummy input for {type(model).__name__}: pass example_input=")
        example_input = _noise(model, 1, getattr(model, "nb_channels", 1), _samples(model, seconds, 4096))
        run = lambda: model.separate(example_input)  # noqa: E731
    else:
        run = lambda: (model if network is model else network)(example_input)  # noqa: E731
    with _evaluating(model), _hooks(children) as hooked:
        run()
    title = f"{type(model).__name__}: {_count(network):,d} parameters" + \
        (f" per target, {model.num_parameters():,d} in the model" if network is not model else "")
    keys = list(children)
    c = _Canvas(7.0, 1.0 * len(keys) + 1.2, title)
    for key, module in children.items():
        shape = hooked[key][-1] if hooked[key] else None
        c.add(key, Block(key, type(module).__name__, _count(module), shape))
    for i, key in enumerate(keys):
        c.blocks[key].xy = (3.5, c.height - 1.0 - i * 1.0)
    for a, b in zip(keys, keys[1:]):
        shape = c.blocks[a].shape
        c.arrow(a, b, _fmt(shape) if shape else "not called")
    return c


def architecture_figure(model: nn.Module, seconds: float | None = None, target: str | None = None, example_input=None):
    """Draw ``model``'s architecture from the object itself; returns a matplotlib ``Figure``.

    One forward pass of the network of ``target`` (default: the first target) on ``seconds`` of
    seeded noise (None: 1 s; D3Net and the U-Nets 0.5 s; BSRNN 0.15 s; the Wavenet one training
    fragment; longer when the
    model needs it: at least one STFT frame, the Wavenet's receptive field; frames rounded down to
    what D3Net and the U-Nets accept), in eval mode under ``torch.no_grad()``; the
    model's weights, BatchNorm statistics and training flag are unchanged afterwards. Every box
    shows a block's name, class and parameter count; every arrow the shape a forward hook (or the
    model's ``trace=``) measured. ``fig.blocks`` holds the drawn :class:`Block` objects.

    Families: ``umx``, ``xumx``, ``d3net``, the U-Nets (``tfc_net``, ``tdf_net``, ``tfc_tdf_net``,
    ``tdc_net``, ``tdc_rnn_net``), ``bsrnn``, ``wavenet``; any other module gets a column of its
    (per-target network's) top-level children, run through ``model.separate`` or on
    ``example_input``.
    """
    from .models.bsrnn import BSRNN
    from .models.d3net import D3Net
    from .models.tfc_tdf_unet import SpectrogramUNet
    from .models.umx import UMX
    from .models.wavenet import Wavenet
    from .models.xumx import XUMX

    if not isinstance(model, nn.Module):
        raise MSSBookError("architecture_figure draws a torch module (e.g. models.create('umx')); "
                           f"got {type(model).__name__}")
    if any(p.is_meta for p in model.parameters()):
        raise MSSBookError("this model lives on the meta device (no values): build it normally to draw it, "
                           "e.g. models.create(name, preset=...)")
    if example_input is None:
        for cls, draw in ((XUMX, _xumx), (UMX, _umx), (D3Net, _d3net), (SpectrogramUNet, _unet), (BSRNN, _bsrnn),
                          (Wavenet, _wavenet)):
            if isinstance(model, cls):
                return draw(model, seconds, target).draw()
    return _generic(model, seconds, target, example_input).draw()
