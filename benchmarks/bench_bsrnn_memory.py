"""BSRNN (paper size) training memory: what the activations need, and what a step takes with and without checkpointing.

Three figures for one target (vocals, v7: 41 bands, N = 128, 12 band-sequence layers, 36.4 M
parameters; random weights and noise excerpts: memory does not depend on the values):

1. **Theoretical activation size** per stereo example of ``--seconds`` (3 s: 259 frames), from
   the shapes: the tensors a backward pass needs, counted once each. Per residual BLSTM and per
   sequence element (one band of one frame of one channel): its input and normalised input (2N),
   per direction the LSTM's 4 gates, cell and hidden state (6·2N), the projection (N); per band
   mask MLP: its input, two hidden tanh outputs (N + 2·4N). Compared with the bytes autograd
   actually saves (``torch.autograd.graph.saved_tensors_hooks``, each storage counted once),
   measured on a short excerpt and scaled by frames (every activation is linear in the frames).
2. **Reference vs checkpointed**, in one run: one Adam step at batch 1 × ``--ratio-seconds`` in a
   fresh process per setting, peak RSS (VmHWM) and time, without and with
   ``checkpointing=True``: the ratio of the two.
3. **The goal**: one Adam step at batch ``--batch-size`` (4) × ``--seconds`` (3 s) with
   checkpointing (the paper preset's default) in a fresh process: peak RSS ≤ ``--limit-gb`` (8).

    python benchmarks/bench_bsrnn_memory.py            # defaults: 4-6 minutes on 2 CPU cores
    python benchmarks/bench_bsrnn_memory.py --batch-size 2 --seconds 3

At its defaults the script finishes in under 10 minutes on 2 cores (measured: see the closing
note of issue 16); it prints the load average beside the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _memory import peak_rss_mib  # noqa: E402  (benchmarks/_memory.py, next to this script)

SR = 44100


def build(checkpointing: bool):
    import torch

    from mssbook import models

    torch.manual_seed(0)
    return models.create("bsrnn", preset="paper", target="vocals", checkpointing=checkpointing)


def excerpts(batch: int, seconds: float):
    import torch

    generator = torch.Generator().manual_seed(0)
    length = int(round(seconds * SR))
    mixture = 0.1 * torch.randn(batch, 2, length, generator=generator)
    references = 0.1 * torch.randn(batch, 1, 2, length, generator=generator)
    return mixture, references


def child(batch: int, seconds: float, checkpointing: bool) -> None:
    """One Adam step in this (fresh) process; prints a JSON line: seconds and peak RSS."""
    import torch

    model = build(checkpointing).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    mixture, references = excerpts(batch, seconds)
    start = time.perf_counter()
    loss, _ = model.loss(mixture, references)
    loss.backward()
    optimizer.step()
    print(json.dumps({"seconds": time.perf_counter() - start, "peak_mib": peak_rss_mib()}))


def run_child(batch: int, seconds: float, checkpointing: bool) -> dict:
    command = [sys.executable, __file__, "--child", str(batch), str(seconds), str(int(checkpointing))]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def theoretical_mib(seconds: float) -> tuple[float, int]:
    """Analytic activation bytes per stereo example (MiB), and the frames."""
    import torch

    from mssbook.models.bsrnn import band_widths

    model_frames = int(round(seconds * SR)) // 512 + 1  # centred STFT, hop 512
    n, repeats, channels = 128, 12, 2
    bands = len(band_widths("v7", SR, 2048))
    elements = channels * bands * model_frames  # sequence elements of every BLSTM
    per_rnn = (2 * n + 2 * 6 * 2 * n + n) * elements
    per_mask = (n + 2 * 4 * n) * elements
    floats = 2 * repeats * per_rnn + per_mask
    return floats * torch.finfo(torch.float32).bits / 8 / 2**20, model_frames


def saved_mib(seconds: float, checkpointing: bool) -> float:
    """Bytes autograd saves for the backward of one stereo example of ``seconds`` (MiB)."""
    import torch

    model = build(checkpointing).train()
    mixture, references = excerpts(1, seconds)
    storages: dict[int, int] = {}

    def pack(tensor):
        if tensor.device.type == "cpu" and not isinstance(tensor, torch.nn.Parameter):
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss, _ = model.loss(mixture, references)
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(size for ptr, size in storages.items() if ptr not in parameters) / 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0, help="training excerpt (the recipe's 3 s)")
    parser.add_argument("--ratio-seconds", type=float, default=1.0,
                        help="excerpt of the with/without comparison at batch 1 (memory is linear in it)")
    parser.add_argument("--limit-gb", type=float, default=8.0)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(int(args.child[0]), float(args.child[1]), bool(int(args.child[2])))
        return 0
    start = time.perf_counter()
    print(f"BSRNN paper (vocals, 36.4 M parameters), CPU, {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.1f} at the start")
    theory, frames = theoretical_mib(args.seconds)
    short = 0.5
    _, short_frames = theoretical_mib(short)
    scale = frames / short_frames
    plain, checkpointed = saved_mib(short, False) * scale, saved_mib(short, True) * scale
    print(f"\n1. activations per {args.seconds:g} s stereo example ({frames} frames), MiB:")
    print(f"   theoretical (shapes)                       {theory:9.0f}")
    print(f"   saved by autograd, no checkpointing         {plain:9.0f}  ({plain / theory:.2f}x the theory)")
    print(f"   saved by autograd, checkpointing            {checkpointed:9.0f}  "
          f"(+ one BLSTM's {theory / 24:.0f} rebuilt at a time in the backward)")
    print(f"\n2. one Adam step, batch 1 x {args.ratio_seconds:g} s, fresh process each:")
    rows = {flag: run_child(1, args.ratio_seconds, flag) for flag in (False, True)}
    for flag, row in rows.items():
        label = "checkpointing" if flag else "reference (no checkpointing)"
        print(f"   {label:<30}" + (row.get("error") or f"{row['seconds']:7.1f} s  {row['peak_mib']:7.0f} MiB peak RSS"))
    if all("error" not in r for r in rows.values()):
        print(f"   checkpointing / reference: time {rows[True]['seconds'] / rows[False]['seconds']:.2f}x, "
              f"peak RSS {rows[True]['peak_mib'] / rows[False]['peak_mib']:.2f}x "
              f"(load average {os.getloadavg()[0]:.1f})")
    print(f"\n3. the goal: batch {args.batch_size} x {args.seconds:g} s, checkpointing (the paper preset):")
    goal = run_child(args.batch_size, args.seconds, True)
    if "error" in goal:
        print(f"   {goal['error']}")
    else:
        met = goal["peak_mib"] <= args.limit_gb * 1024
        print(f"   {goal['seconds']:.1f} s per step, {goal['peak_mib']:.0f} MiB peak RSS: "
              f"{'within' if met else 'ABOVE'} {args.limit_gb:g} GB (load average {os.getloadavg()[0]:.1f})")
    print(f"\ntotal {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
