"""What each architecture costs: separation time, achieved GFLOP/s against the machine's, peak memory, training step.

For each model (a registered name and preset, random weights: speed does not depend on what the
weights learned), a **fresh process** runs the shared separator ``mssbook.separation.separate`` on
``--seconds`` of stereo 44.1 kHz noise (one pass, no segments) twice, first counted, then timed,
then one Adam step of the model's own loss on ``--batch-size`` training excerpts of the length the
model trains on. Per model:

* separation seconds (the second, uninstrumented pass; the first one warms the allocator and
  oneDNN's kernel cache, as the references below are timed after a warm-up) and seconds per second
  of audio (below 1: faster than real time);
* the floating-point operations of that separation, counted in the first pass by
  ``torch.utils.flop_counter.FlopCounterMode`` (convolutions, matrix products, and oneDNN's fused
  convolutions that D3Net's eval path calls, which the counter does not know: :func:`flop_counter`)
  plus the LSTMs' matrix products from their shapes (the counter does not see inside ``nn.LSTM``), and the
  achieved GFLOP/s (the counting modes intercept every operator in Python: timed under them,
  D3Net took 10 % longer);
* **the reference, measured in the same run** (in the model's process just before its
  separation, same threads, float32, so under the same load): the machine's throughput for a
  large matrix product (2048³) and a large 3×3 convolution (64 → 64 channels, 256×256): each
  model's GFLOP/s as a percentage of both;
* **the ceiling of the model's own convolutions** (``own``): every convolution the separation ran is
  recorded (shapes, strides, settings, counts) and replayed alone after it, in the same process; their
  FLOPs over their summed time is what a network of exactly these convolutions could reach with
  nothing else in between, and ``%own`` the model's GFLOP/s as a share of it. (D3Net's dense layers
  are 3x3 convolutions of 2-22 input channels, which run well below the 64-channel reference however
  the network around them is arranged: the two percentages separate the shapes' cost from the
  network's overhead.)
* peak resident memory of the separation (VmHWM of the fresh process, MiB) against ``--limit-gb``
  (4 GB), then of the whole run including the training step.

The separations run under :func:`mssbook.allocator.reuse_freed_memory`, as every separation through
the separator does (freed large tensors are reused instead of mapped and zero-filled afresh by the
kernel); the references and the replays run under it too, so that like is compared with like.
``MSSBOOK_MALLOC=default python benchmarks/bench_models.py`` shows the numbers without it.

The Wavenet is timed at 10× its trained target field (``target_field_length``), which changes
the windows but not the result; ``--models wavenet_tf1601`` times its trained target field (1601
samples: windows of 9791 samples keep 1601, about 6 minutes for 30 s). The training step is one step (the first, so it includes
allocator warm-up); BSRNN's paper preset trains with activation checkpointing (its default).

    python benchmarks/bench_models.py                                  # all families, paper presets, 30 s
    python benchmarks/bench_models.py --models d3net bsrnn --no-train
    python benchmarks/bench_models.py --preset tutorial --device cuda  # on a GPU

At its defaults it finishes in about 7 minutes on 2 CPU cores (under 10; measured for issue 16:
408-436 s at load 1.1-2.0, most of it the Wavenet, BSRNN and D3Net separations, each run twice, and the
convolution replays) and prints the load average beside each row. The families' own sizes: UMX and D3Net
separate the vocals (one network), X-UMX all four targets (one network), TFC-TDF-U-Net its "large"
preset for the paper row (vocals).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _memory import peak_rss_mib  # noqa: E402  (benchmarks/_memory.py, next to this script)

from mssbook.allocator import reuse_freed_memory  # noqa: E402

SR = 44100

#: (registry name, target, separation options) per benchmark row
ROWS = {
    "umx": [("umx", "vocals", {})],
    "xumx": [("xumx", None, {})],
    "d3net": [("d3net", "vocals", {})],
    "tfc_tdf_net": [("tfc_tdf_net", "vocals", {})],
    "tdc_net": [("tdc_net", "vocals", {})],
    "bsrnn": [("bsrnn", "vocals", {})],
    "wavenet": [("wavenet", "multi-instrument", {"target_field_length": "10x"})],
    # the trained target field: 2.4x the work of 10x (windows mostly receptive field), about 6 minutes
    "wavenet_tf1601": [("wavenet", "multi-instrument", {})],
}
#: rows run by default: every family once (the Wavenet at 10x its target field)
DEFAULT_MODELS = [key for key in ROWS if key != "wavenet_tf1601"]
#: the paper-size preset of a family where it is not called "paper"
PAPER_PRESETS = {"tfc_tdf_net": "large"}


def machine_throughput(device: str) -> dict[str, float]:
    """GFLOP/s of a 2048³ float32 matrix product and a 64 → 64 channel 3×3 conv on 256×256, best of 3."""
    def best(fn, flops: float) -> float:
        fn()  # warm-up
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return flops / min(times) / 1e9

    a, b = torch.randn(2048, 2048, device=device), torch.randn(2048, 2048, device=device)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device).eval()
    x = torch.randn(1, 64, 256, 256, device=device)
    with torch.inference_mode(), reuse_freed_memory():  # the allocator setting the separator runs models under
        return {"matmul": best(lambda: a @ b, 2 * 2048**3),
                "conv": best(lambda: conv(x), 2 * 64 * 64 * 9 * 256 * 256)}


#: the convolution operators a separation can reach the dispatcher with (inference mode keeps conv1d/conv2d
#: whole; D3Net's eval path calls oneDNN's fused convolutions, ``_convolution_pointwise`` and its in-place add)
CONV_OPS = {"convolution", "_convolution", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
            "conv_transpose3d", "mkldnn_convolution", "_convolution_pointwise", "_convolution_pointwise_"}


def _onednn_conv_flop(x_shape, second, third, *args, out_shape=None, **kwargs) -> int:
    """oneDNN's ``_convolution_pointwise``: (X, W, ...) or, with a fused addition, (X, other, W, ...)."""
    from torch.utils.flop_counter import conv_flop_count

    weight = third if len(args) > 7 else second  # .binary has 13 arguments, .default 10
    return conv_flop_count(x_shape, weight, out_shape)


def _onednn_conv_add_flop(other_shape, x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    """oneDNN's in-place ``_convolution_pointwise_.binary``: (other, X, W, ...), other += conv(X)."""
    from torch.utils.flop_counter import conv_flop_count

    return conv_flop_count(x_shape, w_shape, out_shape)


def flop_counter():
    """``FlopCounterMode`` that also counts oneDNN's fused convolutions (which it does not know)."""
    from torch.utils.flop_counter import FlopCounterMode

    mapping = {}
    try:
        mapping = {torch.ops.mkldnn._convolution_pointwise: _onednn_conv_flop,
                   torch.ops.mkldnn._convolution_pointwise_: _onednn_conv_add_flop}
    except (AttributeError, RuntimeError):  # a build without oneDNN: nothing to add
        pass
    return FlopCounterMode(display=False, custom_mapping=mapping)


def _spec(value):
    """A hashable stand-in for an operator argument: tensors by shape and strides, lists as tuples."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), value.stride())
    if isinstance(value, (list, tuple)):
        return tuple(_spec(v) for v in value)
    return value


def _rebuild(spec, device: str):
    if isinstance(spec, tuple) and len(spec) == 3 and spec[0] == "tensor":
        return torch.empty_strided(spec[1], spec[2], device=device).normal_()
    if isinstance(spec, tuple):
        return [_rebuild(v, device) for v in spec]
    return spec


class ConvRecorder(torch.utils._python_dispatch.TorchDispatchMode):
    """Records every convolution a separation runs: operator, argument shapes, strides and settings, with counts."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[tuple, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._opname in CONV_OPS and not kwargs:
            key = (func, tuple(_spec(a) for a in args))
            self.calls[key] = self.calls.get(key, 0) + 1
        return func(*args, **(kwargs or {}))


def conv_ceiling(calls: dict[tuple, int], device: str) -> tuple[float, float]:
    """(GFLOP, seconds) of the recorded convolutions, each shape run **alone** (best of 2, same layout).

    What these very convolutions cost with nothing else in between (no activations, additions,
    copies or Python): the ceiling a model made of them can reach on this machine, as opposed to
    the large 64 -> 64 reference convolution, whose many input channels keep the CPU's vector
    units fuller than a network of 2-22 channel convolutions (D3Net's dense layers) can.
    """
    flops = seconds = 0.0
    with torch.inference_mode(), reuse_freed_memory():
        for (func, specs), count in calls.items():
            args = [_rebuild(spec, device) for spec in specs]
            with flop_counter() as counter:
                func(*args)
            times = []
            for _ in range(2):
                start = time.perf_counter()
                func(*args)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            flops += counter.get_total_flops() * count
            seconds += min(times) * count
    return flops / 1e9, seconds


def lstm_flops(module: torch.nn.LSTM, inputs, output) -> int:
    """Multiply-adds ×2 of an ``nn.LSTM`` call from its shapes (input and recurrent matrix products)."""
    x = inputs[0]
    steps = x.shape[1] if module.batch_first else x.shape[0]
    batch = x.numel() // (steps * x.shape[-1])
    directions = 2 if module.bidirectional else 1
    total, width = 0, module.input_size
    for _ in range(module.num_layers):
        total += 2 * batch * steps * directions * 4 * module.hidden_size * (width + module.hidden_size)
        width = directions * module.hidden_size
    return total


def build(name: str, preset: str, target):
    from mssbook import models

    torch.manual_seed(0)
    if preset == "paper":
        preset = PAPER_PRESETS.get(name, preset)
    return models.create(name, preset=preset if preset in models.presets(name) else "seed", target=target)


def time_training_step(model, name: str, device: str, batch_size: int) -> tuple[float, float]:
    """Seconds of one Adam step of ``model.loss`` on random excerpts, and the excerpt seconds."""
    from mssbook import models

    recipe = models.training_recipe(name, model.config["targets"])
    seconds = model.training_seq_dur() or recipe.get("seq_dur", 6.0)
    length = int(round(seconds * model.sample_rate))
    mixture = 0.1 * torch.randn(batch_size, model.nb_channels, length, device=device)
    references = 0.1 * torch.randn(batch_size, len(model.targets), model.nb_channels, length, device=device)
    model.train().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    start = time.perf_counter()
    optimizer.zero_grad()
    loss, _ = model.loss(mixture, references)
    loss.backward()
    optimizer.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    model.eval()
    return time.perf_counter() - start, seconds


def child(spec: dict) -> dict:
    """One row, in this fresh process: separation (timed and counted), then the training step."""
    from mssbook.separation import separate

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    device = spec["device"]
    model = build(spec["name"], spec["preset"], spec["target"]).to(device).eval()
    options = dict(spec["options"])
    row = {"parameters": model.num_parameters(), "reference": machine_throughput(device)}
    if options.get("target_field_length") == "10x":
        options["target_field_length"] = 10 * model.target_field_length
    if spec["name"] == "wavenet":
        row["target_field"] = options.get("target_field_length", model.target_field_length)
    audio = (0.1 * np.random.default_rng(0).standard_normal((2, int(spec["seconds"] * SR)))).astype(np.float32)
    extra = []  # LSTM FLOPs, which FlopCounterMode does not see
    hooks = [m.register_forward_hook(lambda m, i, o: extra.append(lstm_flops(m, i, o)))
             for m in model.modules() if isinstance(m, torch.nn.LSTM)]
    recorder = ConvRecorder()
    segment = audio.shape[-1] / SR + 1  # one pass
    with torch.inference_mode(), flop_counter() as counter, recorder:  # counted, not timed
        separate(audio, SR, model, device=device, segment=segment, **options)
    for hook in hooks:
        hook.remove()
    row["gflop"] = (counter.get_total_flops() + sum(extra)) / 1e9
    start = time.perf_counter()  # timed without the counting modes, which slow every operator down
    separate(audio, SR, model, device=device, segment=segment, **options)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    row["separate_s"] = time.perf_counter() - start
    row["separate_peak_mib"] = peak_rss_mib()
    if recorder.calls:  # after the peak is read: the replay allocates its own inputs
        row["conv_gflop"], row["conv_alone_s"] = conv_ceiling(recorder.calls, device)
    if spec["train"]:
        row["train_s"], row["excerpt_s"] = time_training_step(model, spec["name"], device, spec["batch_size"])
        row["train_peak_mib"] = peak_rss_mib()
    return row


def run_row(spec: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                          cwd=ROOT)
    if done.returncode:
        reason = "killed (out of memory?)" if done.returncode < 0 else f"exit {done.returncode}"
        return {"error": f"{reason}: {done.stderr.strip()[-200:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=list(ROWS))
    parser.add_argument("--preset", default="paper",
                        help="preset of every model (tfc_tdf_net: 'large' for paper; seed where a model has neither)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the separated input")
    parser.add_argument("--batch-size", type=int, default=1, help="training step batch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--limit-gb", type=float, default=4.0, help="peak RSS goal of a separation")
    parser.add_argument("--no-train", action="store_true", help="time separation only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    print(f"device {args.device}, {torch.get_num_threads()} threads, {args.seconds:g} s stereo 44.1 kHz input; "
          f"load average {os.getloadavg()[0]:.1f}")
    print("reference, per row in the model's process just before it separates: GFLOP/s of a 2048^3 matmul (mm) "
          "and of a 3x3 64->64 conv on 256x256 (conv), float32; own: GFLOP/s of the model's own convolutions, each "
          "shape run alone (its ceiling); %own: the model's GFLOP/s as a share of that")
    header = (f"{'model':<34}{'params':>11}{'sep s':>8}{'s/s':>7}{'GFLOP':>8}{'GFLOP/s':>8}{'conv':>6}{'mm':>5}"
              f"{'%conv':>6}{'%mm':>5}{'own':>6}{'%own':>5}"
              f"{'peak MiB':>9}{'<=':>3}{args.limit_gb:g}G{'train s':>9}{'peak MiB':>9}  batch   load")
    print(header)
    for key in args.models:
        for name, target, options in ROWS[key]:
            spec = dict(name=name, preset=args.preset, target=target, options=options, seconds=args.seconds,
                        device=args.device, threads=args.threads, batch_size=args.batch_size,
                        train=not args.no_train and not options)  # one training row per model
            label = f"{name} ({target or 'all'})"
            row = run_row(spec)
            if "error" in row:
                print(f"{label:<34}{row['error']}")
                continue
            if "target_field" in row:
                label += f" tf {row['target_field']}"
            rate, peak = row["gflop"] / row["separate_s"], row["reference"]
            fits = "yes" if row["separate_peak_mib"] <= args.limit_gb * 1024 else "NO"
            line = (f"{label:<34}{row['parameters']:>11,d}{row['separate_s']:>8.1f}"
                    f"{row['separate_s'] / args.seconds:>7.3f}{row['gflop']:>8.0f}{rate:>8.1f}"
                    f"{peak['conv']:>6.0f}{peak['matmul']:>5.0f}"
                    f"{100 * rate / peak['conv']:>6.0f}{100 * rate / peak['matmul']:>5.0f}"
                    + (f"{row['conv_gflop'] / row['conv_alone_s']:>6.0f}"
                       f"{100 * rate * row['conv_alone_s'] / row['conv_gflop']:>5.0f}" if "conv_gflop" in row
                       else f"{'-':>6}{'-':>5}")
                    + f"{row['separate_peak_mib']:>9.0f}{fits:>6}")
            if "train_s" in row:
                line += f"{row['train_s']:>9.1f}{row['train_peak_mib']:>9.0f}  {args.batch_size}x{row['excerpt_s']:.1f}s"
            else:
                line += " " * 26
            print(f"{line}  {os.getloadavg()[0]:.1f}", flush=True)
    print(f"total {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
          "(timings stretch when other work shares the machine; the percentages compare each model with the "
          "reference measured in its own process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
