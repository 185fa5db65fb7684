"""How fast and how memory-hungry is mssbook's separation with Open-Unmix, next to open-unmix?

Three parts, all on the CPU with the paper-sized UMX (``models.create("umx", preset="paper")``,
four targets, random weights: speed and memory do not depend on what the weights learned):

1. **Speed**: seconds to separate a 30 s stereo 44.1 kHz input with ``niter`` 0 and 1, through
   ``mssbook.separation.separate`` (one pass: inputs up to 30 s go in one pass) and through
   ``openunmix.model.Separator`` loaded with the *same* weights; best of ``--repeats`` rounds after
   a warm-up (the two run alternately, so load from other jobs hits both alike), the ratio, and
   the largest difference between the two outputs.
2. **Segment cost**: a ``--segment-input`` s long song (default 150 s) separated by
   ``separate_file`` in segments of each ``--segments`` length (default 5 10 30 60 s) and in one
   pass (default overlap, ``niter=1``): seconds of work per second of audio, its ratio to one
   pass, how much audio the segment plan makes the model process (overlap and the last segment,
   moved back to end at the song's end, are computed twice), and the peak memory. Each point runs
   in a fresh process; the lengths alternate within each of ``--rounds`` rounds and the best time
   is kept, so a burst of load from other jobs does not land on one length only.
3. **Memory curve**: peak resident memory (``VmHWM`` of a fresh process, reset just before the
   separation) of ``separate_file`` (streamed: decoded, separated and written block by block) on
   a ``--minutes`` long stereo song (default 1 and 10 minutes; ``--long`` adds 30 and 60), with
   the default segment (10 s). The songs are synthesized once into a temporary folder (16-bit WAV,
   written in blocks), the outputs go there too and are deleted after each point. The process's
   memory just before separating (Python, torch, the model) is shown, so the rest is what
   separation costs: it should not grow with the song.

Runtime on 2 CPU cores: about 6 minutes at the defaults when the machine is otherwise idle;
``--long`` adds about 12 minutes (the 60-minute song alone takes about 5 with 2 threads, 8 with
one). Contention: when other busy jobs share the cores (load average at or above the number of
cores), torch's two OpenMP threads keep waiting for each other at the many small parallel steps of
the LSTMs, and every timing stretches by 3-15x at random (measured: one 10-minute song took 50 s
at load 1.7 and 500 s at load 4). That, not the segment length, is what made 10 s segments look
ten times slower than 30 s in an earlier run. So at such a load the benchmark runs torch on one
thread (printed at the top; ``--threads`` overrides): slower when idle, but steady, and the ratios
compare like with like. Timings still stretch with the load: it is printed next to every table.

    python benchmarks/bench_separate.py                       # about 6 minutes on 2 cores
    python benchmarks/bench_separate.py --no-speed --no-segments --minutes 10 60
    python benchmarks/bench_separate.py --long                # + 30 and 60 minutes (about 18 minutes)
    python benchmarks/bench_separate.py --threads 2           # two threads even on a busy machine
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SR = 44100
TARGETS = ("vocals", "drums", "bass", "other")
ONE_PASS = 0.0  # the --case segment value that means "one pass"


def load() -> str:
    """The 1-minute load average, for the tables."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


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
    from mssbook.allocator import reuse_freed_memory
    from mssbook.separation import separate

    model = paper_umx()
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((2, int(seconds * SR)))).astype(np.float32)
    x = torch.from_numpy(audio)[None]
    print(f"== speed: UMX paper preset, 4 targets ({model.num_parameters():,} parameters), "
          f"{seconds:g} s stereo at {SR} Hz, CPU, {torch.get_num_threads()} threads, best of {repeats}")
    print(f"{'niter':>5} {'mssbook.separate':>18} {'openunmix Separator':>21} {'ratio':>7} "
          f"{'RTF (mssbook)':>14} {'max |diff|':>11}")
    for niter in (0, 1):
        separator = openunmix_separator(model, niter)

        def run_ref():  # under the allocator setting mssbook.separate uses, so like is compared with like
            with torch.inference_mode(), reuse_freed_memory():
                return separator(x)[0].numpy()

        best, out = best_times({"ours": lambda: separate(audio, SR, model, device="cpu", niter=niter),
                                "ref": run_ref}, repeats)
        diff = max(float(np.abs(out["ours"][t] - out["ref"][k]).max()) for k, t in enumerate(TARGETS))
        print(f"{niter:>5} {best['ours']:>16.2f} s {best['ref']:>19.2f} s {best['ours'] / best['ref']:>6.2f}x "
              f"{best['ours'] / seconds:>14.3f} {diff:>11.2e}")
    print(f"({load()}; goal: ratio <= 1.0)")


# --------------------------------------------------------------------------------------------
# Fresh-process cases (segment cost and memory curve)
# --------------------------------------------------------------------------------------------


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


def synthesize(path: Path, seconds: float, block_seconds: float = 10.0) -> Path:
    """A stereo 16-bit WAV song of ``seconds``: noise and a few drifting tones, written in blocks
    (the whole song is never in memory)."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    total, block = int(seconds * SR), int(block_seconds * SR)
    with sf.SoundFile(str(path), "w", samplerate=SR, channels=2, subtype="PCM_16") as f:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / SR
            tones = sum(0.1 * np.sin(2 * np.pi * (f0 + 3 * np.sin(0.1 * t)) * t) for f0 in (110.0, 440.0, 1760.0))
            x = 0.05 * rng.standard_normal((n, 2)) + tones[:, None]
            f.write(x.astype(np.float32))
    return path


def run_case(song: Path, out_dir: Path, segment: float, niter: int) -> dict:
    """In this (fresh) process: separate ``song`` into ``out_dir`` with ``separate_file``; report
    the time, the memory before and the peak during the separation."""
    from mssbook.separation import separate_file

    model = paper_umx()
    before = rss_mib("VmRSS")
    reset = reset_peak_rss()  # so that the peak is that of the separation, not of building the model
    start = time.perf_counter()
    separate_file(song, out_dir, model, device="cpu", niter=niter,
                  segment=None if segment < 0 else (1e9 if segment == ONE_PASS else segment))
    elapsed = time.perf_counter() - start
    peak = rss_mib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": elapsed, "rss_before_mib": before, "peak_rss_mib": peak}


def fresh(song: Path, tmp: Path, segment: float, niter: int) -> dict | None:
    """``run_case`` in a fresh Python process (its own peak RSS); its outputs are deleted after."""
    out_dir = tmp / "out"
    cmd = [sys.executable, __file__, "--case", str(song), str(out_dir), str(segment), "--niter", str(niter),
           "--threads", str(torch.get_num_threads())]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    if proc.returncode != 0:
        print(f"   failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def plan_factor(seconds: float, segment: float) -> float:
    """Audio the model processes per second of song with the default overlap (segment plan)."""
    from mssbook.separation import DEFAULT_OVERLAP, plan_segments

    length = int(seconds * SR)
    if segment == ONE_PASS:
        return 1.0
    seg = min(length, int(round(segment * SR)))
    return len(plan_segments(length, seg, DEFAULT_OVERLAP)) * seg / length


def segment_curve(seconds: float, segments: list[float], rounds: int, niter: int, tmp: Path) -> None:
    from mssbook.separation import DEFAULT_OVERLAP

    song = synthesize(tmp / f"song_{seconds:g}s.wav", seconds)
    cases = [*segments, ONE_PASS]
    print(f"\n== segment cost: {seconds:g} s stereo song, separate_file, UMX paper preset, 4 targets, "
          f"niter={niter}, overlap {DEFAULT_OVERLAP}, fresh process per point, best of {rounds} "
          f"round(s) (lengths alternate)")
    best: dict[float, dict] = {}
    for _ in range(rounds):
        for segment in cases:
            r = fresh(song, tmp, segment, niter)
            if r is None:
                continue
            old = best.get(segment)
            if old is None or r["seconds"] < old["seconds"]:
                best[segment] = {**r, "peak_rss_mib": max(r["peak_rss_mib"], (old or r)["peak_rss_mib"])}
    if ONE_PASS not in best:
        return
    ref = best[ONE_PASS]["seconds"] / seconds
    print(f"{'segment':>9} {'s per s of audio':>17} {'vs one pass':>12} {'processed/song':>15} {'peak RSS':>10}")
    for segment in cases:
        if segment not in best:
            continue
        r = best[segment]
        label = "one pass" if segment == ONE_PASS else f"{segment:g} s"
        cost = r["seconds"] / seconds
        print(f"{label:>9} {cost:>17.4f} {cost / ref:>11.2f}x {plan_factor(seconds, segment):>14.2f}x "
              f"{r['peak_rss_mib']:>6.0f} MiB")
    print(f"({load()}; goal: every segment >= 5 s within 1.30x of one pass)")
    song.unlink()


def memory_curve(minutes: list[float], niter: int, tmp: Path) -> None:
    print(f"\n== memory: separate_file (streamed) on stereo 44.1 kHz songs, UMX paper preset, 4 targets, "
          f"niter={niter}, default segment, one fresh process per length")
    print(f"{'song':>8} {'time':>8} {'RTF':>6} {'RSS before':>11} {'peak RSS':>10} {'peak - before':>14} "
          f"{'outputs on disk':>16}")
    for m in minutes:
        song = synthesize(tmp / f"song_{m:g}min.wav", m * 60)
        r = fresh(song, tmp, -1.0, niter)
        song.unlink()
        if r is None:
            continue
        outputs = 4 * 2 * 4 * m * 60 * SR / 2**20  # 4 float32 stereo stems
        print(f"{m:>4g} min {r['seconds']:>7.1f}s {r['seconds'] / (m * 60):>6.3f} {r['rss_before_mib']:>7.0f} MiB "
              f"{r['peak_rss_mib']:>6.0f} MiB {r['peak_rss_mib'] - r['rss_before_mib']:>10.0f} MiB "
              f"{outputs:>12.0f} MiB", flush=True)
    print(f"({load()}; goal: peak RSS <= 1536 MiB at 10 and 60 minutes, flat in the song's length)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the speed input (default 30)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per speed case (best is shown)")
    parser.add_argument("--segment-input", type=float, default=150.0,
                        help="length in seconds of the song for the segment cost (default 150)")
    parser.add_argument("--segments", type=float, nargs="+", default=[5.0, 10.0, 30.0, 60.0],
                        help="segment lengths in seconds for the segment cost (default 5 10 30 60)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the segment cost (best is shown)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0],
                        help="song lengths in minutes for the memory curve (default 1 10)")
    parser.add_argument("--long", action="store_true", help="add 30 and 60 minutes to the memory curve")
    parser.add_argument("--niter", type=int, default=1, help="Wiener EM iterations (default 1, the model's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: one per core, or 1 when the load average is "
                             "already at the number of cores: busy OpenMP threads wait for each other)")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--no-segments", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--case", nargs=3, default=None, help=argparse.SUPPRESS)  # internal: one fresh run
    args = parser.parse_args()
    if args.threads is None and args.case is None and os.getloadavg()[0] >= (os.cpu_count() or 1):
        args.threads = 1  # busy machine: one thread is steady, two wait for each other (docstring)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.case is not None:
        song, out_dir, segment = args.case
        print(json.dumps(run_case(Path(song), Path(out_dir), float(segment), args.niter)))
        return
    start = time.perf_counter()
    print(f"{load()}; torch threads: {torch.get_num_threads()}")
    if not args.no_speed:
        speed(args.seconds, args.repeats)
    with tempfile.TemporaryDirectory(prefix="mssbook-bench-separate-") as tmp:
        if not args.no_segments:
            segment_curve(args.segment_input, args.segments, args.rounds, args.niter, Path(tmp))
        if not args.no_memory:
            minutes = sorted(set(args.minutes) | ({30.0, 60.0} if args.long else set()))
            memory_curve(minutes, args.niter, Path(tmp))
    print(f"\ntotal {time.perf_counter() - start:.0f} s; {load()} (timings stretch when other work "
          "shares the machine)")


if __name__ == "__main__":
    main()
