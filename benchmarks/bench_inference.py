"""How much faster is separation on the CPU with ``runtime="onnx"`` (onnxruntime) than eager PyTorch?

For each model (paper preset, random weights: speed does not depend on what the weights learned;
the input statistics are set from the input so that the networks see magnitudes of a sensible
scale), ``model.separate`` of a 30 s stereo 44.1 kHz noise input with ``runtime="torch"`` and
``runtime="onnx"``: the first onnx call (export + session + separation), then the best of
``--repeats`` timed rounds of each (the two alternate, so load from other jobs hits both alike),
the speed-up, and the largest difference between the two waveforms (absolute, and relative to the
largest sample). Only the network runs in onnxruntime; STFT, patches, channel swap and the
Wiener filter are the same torch code in both. Both run under
:func:`mssbook.allocator.reuse_freed_memory`, as every model does under ``mssbook.separate``
(without it, eager D3Net spends a quarter of its time in the kernel's page faults).

    python benchmarks/bench_inference.py                         # D3Net (vocals), UMX, X-UMX
    python benchmarks/bench_inference.py --models d3net --d3net-targets vocals bass --repeats 2
    OMP_NUM_THREADS=1 python benchmarks/bench_inference.py --threads 1 --seconds 10

Needs ``pip install onnxruntime onnx`` (or ``pip install "mssbook[onnx]"``).

At its defaults it finishes in under 10 minutes on 2 CPU cores (about 4 minutes measured for
issue 16, most of it D3Net: three separations and one export), and prints the ratio of the two
runtimes per model (the reference is eager PyTorch, run alternately in the same process) with
the load average at the start and the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SR = 44100


def build(name: str, d3net_targets):
    from mssbook import models

    torch.manual_seed(0)
    targets = list(d3net_targets) if name == "d3net" else ["vocals", "drums", "bass", "other"]
    return models.create(name, preset="paper", target=targets).eval()


def run(model, x, runtime):
    from mssbook.allocator import reuse_freed_memory

    with torch.inference_mode(), reuse_freed_memory():  # as mssbook.separate runs every model
        return model.separate(x, runtime=runtime).numpy()


def bench(name: str, audio: np.ndarray, repeats: int, d3net_targets) -> None:
    model = build(name, d3net_targets)
    model.initialize_from_data([audio])  # sensible input scaling (random weights otherwise)
    x = torch.from_numpy(audio)[None]
    start = time.perf_counter()
    out_onnx = run(model, x, "onnx")
    first = time.perf_counter() - start
    best = {"torch": float("inf"), "onnx": float("inf")}
    out = {}
    for _ in range(repeats):
        for runtime in best:
            start = time.perf_counter()
            out[runtime] = run(model, x, runtime)
            best[runtime] = min(best[runtime], time.perf_counter() - start)
    diff = float(np.abs(out["onnx"] - out["torch"]).max())
    scale = float(np.abs(out["torch"]).max())
    again = float(np.abs(out_onnx - out["onnx"]).max())
    label = f"{name} ({','.join(model.targets)})"
    print(f"{label:<34} {model.num_parameters():>11,} {best['torch']:>8.2f} s {best['onnx']:>8.2f} s "
          f"{best['torch'] / best['onnx']:>7.2f}x {first:>9.1f} s {diff:>10.2e} {diff / scale:>9.2e}"
          + ("" if again == 0 else f"  (onnx runs differ by {again:.1e})"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["d3net", "umx", "xumx"])
    parser.add_argument("--d3net-targets", nargs="+", default=["vocals"],
                        help="D3Net targets (default vocals: eager paper D3Net is about 1 min per target here)")
    parser.add_argument("--seconds", type=float, default=30.0, help="input length (default 30)")
    parser.add_argument("--repeats", type=int, default=1, help="timed rounds per runtime (best is shown)")
    parser.add_argument("--threads", type=int, default=None, help="torch and onnxruntime threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from mssbook.runtime import import_onnxruntime

    ort = import_onnxruntime()
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((2, int(args.seconds * SR)))).astype(np.float32)
    print(f"== model.separate, paper presets, {args.seconds:g} s stereo at {SR} Hz, CPU, "
          f"{torch.get_num_threads()} threads, best of {args.repeats}; torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'model (targets)':<34} {'parameters':>11} {'torch':>10} {'onnx':>10} {'speed-up':>8} "
          f"{'1st onnx':>11} {'max |diff|':>10} {'relative':>9}")
    start = time.perf_counter()
    for name in args.models:
        bench(name, audio, args.repeats, args.d3net_targets)
    print(f"\n'1st onnx' includes the export and session set-up, done once per model and input shape.\n"
          f"total {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
          f"(timings stretch when other work shares the machine)")


if __name__ == "__main__":
    main()
