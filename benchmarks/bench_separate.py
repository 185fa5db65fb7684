"""How fast and how memory-hungry is ``mssbook.separate`` with Open-Unmix, next to open-unmix?

Two parts, both on the CPU with the paper-sized UMX (``models.create("umx", preset="paper")``,
four targets, random weights: speed and memory do not depend on what the weights learned):

1. **Speed**: seconds to separate a 30 s stereo 44.1 kHz input with ``niter`` 0 and 1, through
   ``mssbook.separation.separate`` (one pass: 30 s is the default segment) and through
   ``openunmix.model.Separator`` loaded with the *same* weights; best of ``--repeats`` rounds after
   a warm-up (the two run alternately, so load from other jobs hits both alike), plus the largest
   difference between the two outputs.
2. **Memory**: peak resident memory of a fresh process (``VmHWM``, reset just before separating)
   that separates a ``--minutes`` long input (default 10 min) in segments of each ``--segments``
   size; also the process's memory just before separating (model + input), so the difference is
   what separation costs, outputs included. Without segments open-unmix needs about 7 GB for a 4-minute track (spec metrics.md).

    python benchmarks/bench_separate.py                      # about 3-5 minutes on 2 cores
    python benchmarks/bench_separate.py --segments 10 30 --minutes 5 --repeats 1
    python benchmarks/bench_separate.py --no-memory
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SR = 44100
TARGETS = ("vocals", "drums", "bass", "other")


def paper_umx(seed: int = 0):
    from mssbook import models

    torch.manual_seed(seed)
    return models.create("umx", preset="paper", target=list(TARGETS)).eval()


def openunmix_separator(model, niter: int):
    """``openunmix.model.Separator`` holding ``model``'s weights (same parameter names, spec 1.9)."""
    from openunmix.model import OpenUnmix, Separator

    nets = {}
    for target, net in model.target_models.items():
        ref = OpenUnmix(nb_bins=model.nb_bins, nb_channels=model.nb_channels, hidden_size=net.hidden_size,
                        nb_layers=3, unidirectional=False, max_bin=model.max_bin)
        missing, unexpected = ref.load_state_dict(net.state_dict(), strict=False)
        if missing:
            raise RuntimeError(f"openunmix.OpenUnmix lacks weights for {target}: {missing}")
        nets[target] = ref.eval()
    return Separator(nets, niter=niter, residual=False, sample_rate=float(model.sample_rate),
                     n_fft=model.n_fft, n_hop=model.n_hop, nb_channels=model.nb_channels,
                     wiener_win_len=model.wiener_win_len or None).eval()


def best_times(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Best wall time of each function over ``repeats`` rounds, after one warm-up round.

    The functions run alternately within a round, so that a change in the machine's load (other
    jobs sharing the CPUs) affects them alike rather than whichever happened to run then.
    """
    outputs = {name: fn() for name, fn in fns.items()}  # warm-up (allocator, thread pools)
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            outputs[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best, outputs


def speed(seconds: float, repeats: int) -> None:
    from mssbook.separation import separate

    model = paper_umx()
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((2, int(seconds * SR)))).astype(np.float32)
    x = torch.from_numpy(audio)[None]
    print(f"== speed: UMX paper preset, 4 targets ({model.num_parameters():,} parameters), "
          f"{seconds:g} s stereo at {SR} Hz, CPU, {torch.get_num_threads()} threads, best of {repeats}")
    print(f"{'niter':>5} {'mssbook.separate':>18} {'openunmix Separator':>21} {'RTF (mssbook)':>14} {'max |diff|':>11}")
    for niter in (0, 1):
        separator = openunmix_separator(model, niter)

        def run_ref():
            with torch.inference_mode():
                return separator(x)[0].numpy()

        best, out = best_times({"ours": lambda: separate(audio, SR, model, device="cpu", niter=niter),
                                "ref": run_ref}, repeats)
        diff = max(float(np.abs(out["ours"][t] - out["ref"][k]).max()) for k, t in enumerate(TARGETS))
        print(f"{niter:>5} {best['ours']:>16.2f} s {best['ref']:>19.2f} s {best['ours'] / seconds:>14.3f} {diff:>11.2e}")


def rss_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process from /proc, in MiB (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_case(minutes: float, segment: float, niter: int) -> dict:
    """Run in a fresh process: separate ``minutes`` of audio in ``segment`` s pieces; report RSS."""
    from mssbook.separation import separate

    model = paper_umx()
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((2, int(minutes * 60 * SR)))).astype(np.float32)
    before = rss_mib("VmRSS")
    reset = reset_peak_rss()  # so that the peak is that of the separation, not of building the model
    start = time.perf_counter()
    out = separate(audio, SR, model, device="cpu", segment=segment, niter=niter)
    elapsed = time.perf_counter() - start
    peak = rss_mib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"segment": segment, "minutes": minutes, "niter": niter, "seconds": elapsed,
            "rss_before_mib": before, "peak_rss_mib": peak, "outputs_mib": sum(a.nbytes for a in out.values()) / 2**20}


def memory(minutes: float, segments: list[float], niter: int) -> None:
    print(f"\n== memory: {minutes:g} min stereo input, UMX paper preset, 4 targets, niter={niter}, "
          f"overlap 0.25, one fresh process per segment size")
    print(f"{'segment':>8} {'time':>9} {'RTF':>6} {'RSS before':>11} {'peak RSS':>10} {'peak - before':>14} {'outputs':>9}")
    for segment in segments:
        cmd = [sys.executable, __file__, "--case", str(segment), "--minutes", str(minutes), "--niter", str(niter)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            print(f"{segment:>7g}s  failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{segment:>7g}s {r['seconds']:>8.1f}s {r['seconds'] / (minutes * 60):>6.3f} "
              f"{r['rss_before_mib']:>8.0f} MiB {r['peak_rss_mib']:>6.0f} MiB "
              f"{r['peak_rss_mib'] - r['rss_before_mib']:>10.0f} MiB {r['outputs_mib']:>5.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the speed input (default 30)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case (best is shown)")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the memory input (default 10)")
    parser.add_argument("--segments", type=float, nargs="+", default=[10.0, 30.0, 60.0],
                        help="segment sizes in seconds for the memory part (default 10 30 60)")
    parser.add_argument("--niter", type=int, default=1, help="Wiener EM iterations in the memory part (default 1)")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--case", type=float, default=None, help=argparse.SUPPRESS)  # internal: one memory run
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(memory_case(args.minutes, args.case, args.niter)))
        return
    start = time.perf_counter()
    if not args.no_speed:
        speed(args.seconds, args.repeats)
    if not args.no_memory:
        memory(args.minutes, args.segments, args.niter)
    print(f"\ntotal {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs (timings stretch when other work shares the machine)")


if __name__ == "__main__":
    main()
