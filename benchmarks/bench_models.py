"""What each architecture costs: separation time per second of audio and time per training step.

For each model (a registered name and preset, random weights: speed does not depend on what the
weights learned), the shared separator ``mssbook.separation.separate`` runs on ``--seconds`` of
stereo 44.1 kHz noise (one pass, no segments), best of ``--repeats``; then one optimiser step of
the model's own loss on a batch of training excerpts of the length the model trains on. The
Wavenet is timed at its trained target field and at 10× that target field (the seed's speed-up,
``target_field_length``), which changes the windows but not the result.

    python benchmarks/bench_models.py                                  # all families, paper presets, 30 s
    python benchmarks/bench_models.py --models wavenet --seconds 30
    python benchmarks/bench_models.py --preset tutorial --device cuda  # on a GPU

Prints one line per model: parameters, separation seconds, seconds per second of audio (the
real-time factor: below 1 is faster than real time), training step seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SR = 44100

#: (registry name, target or mode, separation options) per benchmark row
ROWS = {
    "umx": [("umx", "vocals", {})],
    "xumx": [("xumx", None, {})],
    "d3net": [("d3net", "vocals", {})],
    "tfc_tdf_net": [("tfc_tdf_net", "vocals", {})],
    "tdc_net": [("tdc_net", "vocals", {})],
    "bsrnn": [("bsrnn", "vocals", {})],
    "wavenet": [("wavenet", "multi-instrument", {}), ("wavenet", "multi-instrument", {"target_field_length": "10x"})],
}


def build(name: str, preset: str, target):
    from mssbook import models

    torch.manual_seed(0)
    model = models.create(name, preset=preset if preset in models.presets(name) else "seed", target=target)
    return model


def time_separation(model, audio: np.ndarray, device: str, repeats: int, options: dict) -> float:
    from mssbook.separation import separate

    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        separate(audio, SR, model, device=device, segment=audio.shape[-1] / SR + 1, **options)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


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
    times = []
    for _ in range(2):  # the first step warms up allocators and kernels
        start = time.perf_counter()
        optimizer.zero_grad()
        loss, _ = model.loss(mixture, references)
        loss.backward()
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    model.eval()
    return times[-1], seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--preset", default="paper", help="preset of every model (seed where a model has no paper)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the separated input")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4, help="training step batch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-train", action="store_true", help="time separation only")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    audio = (0.1 * np.random.default_rng(0).standard_normal((2, int(args.seconds * SR)))).astype(np.float32)
    print(f"device {args.device}, {torch.get_num_threads()} threads, {args.seconds:g} s stereo 44.1 kHz input")
    print(f"{'model':<38}{'parameters':>12}{'separate s':>12}{'s per s':>9}{'train step s':>14}  batch")
    for key in args.models:
        for name, target, options in ROWS[key]:
            model = build(name, args.preset, target).to(args.device).eval()
            options = dict(options)
            label = f"{name} ({target or 'all'})"
            if options.get("target_field_length") == "10x":
                options["target_field_length"] = 10 * model.target_field_length
                label += f" tf {options['target_field_length']}"
            elif name == "wavenet":
                label += f" tf {model.target_field_length}"
            with torch.inference_mode():
                seconds = time_separation(model, audio, args.device, args.repeats, options)
            training = ""
            if not args.no_train and not options:  # one training row per model, not per option
                step, excerpt = time_training_step(model, name, args.device, args.batch_size)
                training = f"{step:>14.2f}  {args.batch_size} x {excerpt:.2f} s"
            print(f"{label:<38}{model.num_parameters():>12,d}{seconds:>12.2f}{seconds / args.seconds:>9.3f}{training}")
            del model
    return 0


if __name__ == "__main__":
    sys.exit(main())
