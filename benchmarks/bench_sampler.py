"""How fast does MUSDBTrainSet deliver UMX-sized batches, compared with one training step?

Measures excerpts per second and seconds per batch for ``num_workers`` 0 and 2 at UMX's defaults
(batch 16 x 6 s, four sources mixed, random track mixing, gain + channel swap, target vocals) on
a WAV tree, and
optionally on a STEMS (.stem.mp4) tree, then compares the time per batch with the time of one
training step: a measured step of ``mssbook.models.create("umx", preset="paper")`` when that
exists (``--no-model`` skips it), otherwise the reference figure of the spec (UMX, batch
16 x 6 s, 2 CPU cores: 2.05 s per step).

    python benchmarks/bench_sampler.py                       # synthetic WAV tree in a temp dir
    python benchmarks/bench_sampler.py --root /data/musdb18hq --batches 20
    python benchmarks/bench_sampler.py --no-stems --workers 0 2 4 --targets vocals drums bass other

A freshly written synthetic tree sits in the page cache, so its figures are the best case; a real
MUSDB18-HQ tree read from a cold disk is slower (use an SSD: open-unmix#3, #35).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SR = 44100
REFERENCE_STEP_S = 2.05  # spec metrics.md: UMX training step, 1 target, batch 16 x 6 s, 2 CPU cores
SOURCES = ("vocals", "drums", "bass", "other")


def make_wav_tree(root: Path, n_tracks: int, seconds: float, toy: bool = False, seed: int = 0) -> tuple[Path, str]:
    """A MUSDB-layout WAV tree: white noise as 16-bit WAV (like MUSDB18-HQ), or toy songs.

    Reading speed does not depend on what the samples sound like, so noise (written in about a
    second) is the default; ``toy=True`` uses ``mssbook.data.toy.generate_toy_dataset`` (slower).
    """
    if toy:
        from mssbook.data.toy import generate_toy_dataset

        generate_toy_dataset(root / "toy", n_train=n_tracks, n_valid=0, n_test=0, duration=seconds,
                             seed=seed, progress=False)
        return root / "toy", "mssbook.data.toy.generate_toy_dataset"
    import soundfile as sf

    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    for t in range(n_tracks):
        folder = root / "train" / f"Synthetic - Song {t:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        total = np.zeros((n, 2), np.float32)
        for source in SOURCES:
            audio = (0.1 * rng.standard_normal((n, 2))).astype(np.float32)
            sf.write(folder / f"{source}.wav", audio, SR, subtype="PCM_16")
            total += audio
        sf.write(folder / "mixture.wav", total, SR, subtype="PCM_16")
    return root, "white noise, 16-bit WAV"


def time_loader(dataset, batch_size: int, n_batches: int, num_workers: int, context: str | None) -> dict:
    """Seconds per batch after the first (worker start-up excluded), and excerpts per second."""
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
        num_workers=num_workers,
        multiprocessing_context=context if num_workers > 0 else None,
        drop_last=True,
    )
    start = time.perf_counter()
    it = iter(loader)
    next(it)
    first = time.perf_counter() - start
    start = time.perf_counter()
    cpu0 = _cpu_seconds()
    done = 0
    for _ in range(n_batches):
        try:
            next(it)
        except StopIteration:
            break
        done += 1
    elapsed = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu0  # this process and finished ffmpeg children; not DataLoader workers
    del it
    return {
        "workers": num_workers,
        "first_batch_s": first,
        "batches": done,
        "s_per_batch": elapsed / max(done, 1),
        "excerpts_per_s": done * batch_size / elapsed if elapsed > 0 else float("nan"),
        "cpu_s_per_batch": cpu / max(done, 1) if num_workers == 0 else None,
    }


def _cpu_seconds() -> float:
    """CPU time of this process plus its waited-for children (ffmpeg), in seconds.

    Unlike wall-clock time it hardly changes when other programs share the cores, so it tells how
    much of the machine the sampler needs even on a busy machine.
    """
    import resource

    own = time.process_time()
    try:
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
    except (AttributeError, OSError):  # pragma: no cover - Windows has no RUSAGE_CHILDREN
        return own
    return own + child.ru_utime + child.ru_stime


def training_step_time(batch_size: int, seq_dur: float, n_targets: int, repeats: int = 2) -> tuple[float, str]:
    """A measured UMX step (``mssbook.models.create("umx", preset="paper")``) or the spec's figure."""
    import torch

    try:
        from mssbook.models import create

        model = create("umx", preset="paper", target="vocals")
    except Exception as exc:  # not written yet, or an interface this script does not know
        return REFERENCE_STEP_S, f"spec reference (metrics.md: UMX, 1 target); create('umx') unavailable: {exc}"
    try:
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(0)
        n = int(seq_dur * model.sample_rate)
        mixture = torch.randn(batch_size, 2, n, generator=gen)
        references = torch.randn(batch_size, len(model.targets), 2, n, generator=gen)
        times = []
        for _ in range(repeats + 1):  # the first step warms up
            start = time.perf_counter()
            loss, _ = model.loss(mixture, references)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
        return float(np.median(times[1:])), (
            f"measured: mssbook.models.create('umx', preset='paper', target='vocals'), "
            f"{model.num_parameters()} parameters, median of {repeats} steps"
        )
    except Exception as exc:
        return REFERENCE_STEP_S, f"spec reference (metrics.md); a step of create('umx') failed: {type(exc).__name__}: {exc}"


def report(title: str, rows: list[dict], step_s: float, batch_size: int) -> None:
    print(f"\n{title}")
    print(f"  {'workers':>7}  {'excerpts/s':>10}  {'s/batch':>8}  {'CPU s/batch':>11}  {'first batch s':>13}  {'batch / step':>12}")
    for r in rows:
        cpu = "-" if r["cpu_s_per_batch"] is None else f"{r['cpu_s_per_batch']:.3f}"
        print(
            f"  {r['workers']:>7}  {r['excerpts_per_s']:>10.1f}  {r['s_per_batch']:>8.3f}  {cpu:>11}  "
            f"{r['first_batch_s']:>13.2f}  {r['s_per_batch'] / step_s:>11.0%}"
        )
    best = min(r["s_per_batch"] for r in rows)
    verdict = "NOT the bottleneck" if best < step_s else "the BOTTLENECK"
    print(f"  -> at best {best:.3f} s per batch of {batch_size} vs {step_s:.2f} s per step: the sampler is {verdict}")
    if step_s != REFERENCE_STEP_S:
        print(f"     (vs the spec's {REFERENCE_STEP_S} s UMX step: {best / REFERENCE_STEP_S:.0%})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", help="a MUSDB-layout WAV tree (default: generate one in a temp dir)")
    parser.add_argument("--tracks", type=int, default=6, help="synthetic tracks (default 6)")
    parser.add_argument("--toy", action="store_true", help="synthetic tree from mssbook.data.toy instead of noise")
    parser.add_argument("--track-seconds", type=float, default=20.0, help="synthetic track length (20 s)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-dur", type=float, default=6.0)
    parser.add_argument("--batches", type=int, default=8, help="batches timed after the first (8)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--targets", nargs="+", default=["vocals"],
                        help="targets per item (UMX: vocals; X-UMX: vocals drums bass other)")
    parser.add_argument("--context", default=None, help="DataLoader start method: fork or spawn (default: the platform's)")
    parser.add_argument("--stems-root", help="also time a STEMS tree (default: shared/data/musdb18-sample when present)")
    parser.add_argument("--stems-batches", type=int, default=2)
    parser.add_argument("--no-stems", action="store_true", help="skip the STEMS measurement")
    parser.add_argument("--no-model", action="store_true", help="use the spec's 2.05 s instead of timing a UMX step")
    args = parser.parse_args(argv)

    import torch

    from mssbook.data.musdb import describe_musdb, open_musdb
    from mssbook.data.sampler import SEED_PRESETS, MUSDBTrainSet

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPU cores, "
          f"load average {load:.1f} (wall-clock figures assume an otherwise idle machine)")
    if args.no_model:
        step_s, step_src = REFERENCE_STEP_S, "spec reference (metrics.md: UMX, 1 target, 2 CPU cores), --no-model"
    else:
        step_s, step_src = training_step_time(args.batch_size, args.seq_dur, len(args.targets))
    print(f"training step (batch {args.batch_size} x {args.seq_dur} s): {step_s:.2f} s  [{step_src}]")

    preset = dict(SEED_PRESETS["umx"], seq_dur=args.seq_dur)
    with tempfile.TemporaryDirectory(prefix="mssbook-bench-") as tmp:
        root = args.root
        if root is None:
            start = time.perf_counter()
            root, origin = make_wav_tree(Path(tmp), args.tracks, args.track_seconds, toy=args.toy)
            print(f"synthetic WAV tree: {args.tracks} tracks x {args.track_seconds} s ({origin}), "
                  f"written in {time.perf_counter() - start:.1f} s to {root}")
        db = open_musdb(root, split=None)
        info = describe_musdb(db)
        print(f"WAV tree {root}: {info['n_tracks']} tracks, {info['total_seconds']} s, format {info['format']}")
        ds = MUSDBTrainSet(db, tuple(args.targets), **preset)
        print(ds)
        rows = [time_loader(ds, args.batch_size, args.batches, w, args.context) for w in args.workers]
        report(f"WAV ({'soundfile' if ds.direct else 'ffmpeg'} reads), batch {args.batch_size} x {args.seq_dur} s, "
               f"targets {args.targets}, 4-source mix, random track mix, gain + channelswap:", rows, step_s, args.batch_size)

    if not args.no_stems:
        stems_root = args.stems_root
        if stems_root is None:
            from mssbook.paths import shared_data_dir

            shared = shared_data_dir()
            if shared is not None and (shared / "musdb18-sample" / "train").is_dir():
                stems_root = str(shared / "musdb18-sample")
        if stems_root is None:
            print("\nSTEMS: skipped (no --stems-root and no shared/data/musdb18-sample)")
        else:
            sdb = open_musdb(stems_root, split=None)
            sds = MUSDBTrainSet(sdb, tuple(args.targets), **dict(preset, samples_per_track=max(64, args.batch_size * (args.stems_batches + 1))))
            rows = [time_loader(sds, args.batch_size, args.stems_batches, w, args.context) for w in args.workers]
            report(f"STEMS {stems_root} (one ffmpeg process per item, input-side seeks):", rows, step_s, args.batch_size)
            print("  (MP4 decoding is why open-unmix's FAQ says: convert to WAV with musdbconvert, or use MUSDB18-HQ)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
