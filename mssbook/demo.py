"""The main job (``mssbook demo``, ``bash scripts/demo.sh``): the whole pipeline on the toy songs.

1. generate (or reuse) the toy dataset;
2. train a tutorial-size Open-Unmix for vocals on the CPU (a few minutes; resumed if interrupted);
3. separate a held-out toy song, and the real song in ``shared/data/mixtures`` when present;
4. evaluate on the toy test songs with museval, next to the mixture itself as a baseline;
5. write a report folder: stems as WAV, a spectrogram figure, the scores table.

Everything goes through the library functions a script would call; sizes follow the profile
(``MSSBOOK_PROFILE=ci`` shrinks them for the test suite).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import models, profile
from .errors import OutputExistsError
from .paths import data_dir, shared_data_dir


def demo_settings() -> dict:
    """Sizes of the demo run: classroom size by default, tiny under the ci profile."""
    return {
        "epochs": profile.choose(default=12, ci=1),
        "batch_size": 4,
        "seq_dur": profile.choose(default=6.0, ci=2.0),
        "samples_per_track": profile.choose(default=16, ci=2),
        "time_budget": profile.choose(default=200.0, ci=30.0),  # seconds of training at most
        "valid_max_duration": profile.choose(default=None, ci=4.0),
        "eval_tracks": profile.choose(default=None, ci=1),  # None: every toy test song
    }


def _write_table(path: Path, rows: dict[str, dict[str, float]]) -> str:
    header = "| estimate | SDR | SIR | ISR | SAR |\n| --- | --- | --- | --- | --- |\n"
    lines = [f"| {name} | " + " | ".join(f"{row[m]:.2f}" for m in ("SDR", "SIR", "ISR", "SAR")) + " |"
             for name, row in rows.items()]
    text = header + "\n".join(lines) + "\n"
    path.write_text("Vocals, museval BSSEval v4, median over 1 s frames then over the toy test songs.\n\n" + text)
    return text


def run_demo(output: str | Path | None = None, progress: bool = True) -> dict:
    """Run the five steps; returns a summary dict (also written as ``summary.json``)."""
    import matplotlib

    matplotlib.use("Agg")
    from .data.audio import load_audio, save_audio
    from .data.musdb import open_musdb
    from .data.toy import ensure_toy_dataset, format_summary, summarize_dataset
    from .evaluation import aggregate, evaluate_tracks, score_track
    from .plots import stems_figure
    from .separation import separate, separate_file
    from .training import DataConfig, TrainConfig, train_model

    settings = demo_settings()
    started = time.perf_counter()
    report = Path(output) if output else data_dir() / "reports" / time.strftime("demo-%Y%m%d-%H%M%S")
    if report.exists():  # a new folder each run: nothing is overwritten
        raise OutputExistsError(f"{report} already exists; choose a new --output folder (or omit it).")
    report.mkdir(parents=True)
    summary: dict = {"report": str(report), "profile": profile.current(), "settings": settings}

    print("== 1. toy dataset")
    root = ensure_toy_dataset(progress=progress)
    print(format_summary(summarize_dataset(root)))

    print("\n== 2. training a tutorial-size Open-Unmix for vocals on the CPU")
    model = models.create("umx", preset="tutorial", target="vocals")
    run = data_dir() / "runs" / f"demo-umx-vocals-{profile.current()}"
    data = DataConfig(root=str(root), is_wav=True, seq_dur=settings["seq_dur"],
                      samples_per_track=settings["samples_per_track"],
                      valid_max_duration=settings["valid_max_duration"], seed=42)
    config = TrainConfig(epochs=settings["epochs"], batch_size=settings["batch_size"],
                         time_budget=settings["time_budget"], seed=42, progress=progress)
    t0 = time.perf_counter()
    trainer = train_model(model, data, config, output=run)
    summary["training"] = {"seconds": round(time.perf_counter() - t0, 1), "epochs": trainer.epoch,
                           "parameters": model.num_parameters(), "run": str(run),
                           "best_valid_loss": trainer.best_loss}
    print(f"trained {trainer.epoch} epochs in {summary['training']['seconds']} s; checkpoints in {run}")
    from .checkpoints import load_model

    model = load_model(run / "best.pt")

    print("\n== 3. separating a held-out toy song" + (" and a real song" if shared_data_dir() else ""))
    test_db = open_musdb(root, subsets="test", is_wav=True)
    track = test_db.tracks[0]
    mixture = track.audio.T.astype(np.float32)  # (C, L)
    stems = separate(mixture, track.rate, model, residual=True)  # vocals + residual (accompaniment)
    song_dir = report / "stems" / track.name
    reference = track.targets["vocals"].audio.T.astype(np.float32)
    for name, audio in {"mixture": mixture, "vocals (estimate)": stems["vocals"], "vocals (reference)": reference,
                        "accompaniment (estimate)": stems["residual"]}.items():
        save_audio(song_dir / (name.replace(" (", "_").replace(")", "") + ".wav"), audio, track.rate, subtype="FLOAT")
    figure = stems_figure({"mixture": mixture, "vocals, estimate": stems["vocals"], "vocals, reference": reference},
                          track.rate)
    figure.savefig(report / "spectrograms.png", dpi=100)
    summary["separated"] = [str(song_dir)]
    real = shared_data_dir() / "mixtures" / "Steven M Bryant - Slow Motion Dream.mp3" if shared_data_dir() else None
    if real is not None and real.is_file():
        written = separate_file(real, report / "stems", model, residual=True)
        summary["separated"].append(str(Path(next(iter(written.values()))).parent))
        audio, sr = load_audio(real)
        print(f"separated {real.name} ({audio.shape[1] / sr:.1f} s)")

    print("\n== 4. evaluation with museval on the toy test songs")
    scores = report / "scores"
    # residual=True: the accompaniment is the Wiener filter's second source, so EM (niter 1) runs
    evaluate_tracks(model, root, "test", output_dir=scores / "model", targets=["vocals"], is_wav=True,
                    tracks=settings["eval_tracks"], progress=progress, residual=True, niter=1)
    baseline = scores / "mixture"
    evaluated = aggregate(scores / "model", "test").tracks
    for test_track in test_db.tracks:
        if test_track.name in evaluated:
            mix = test_track.audio.T
            score_track(test_track, {"vocals": mix, "accompaniment": mix}, output_dir=baseline)
    rows = {"UMX (tutorial, trained here)": aggregate(scores / "model", "test")["vocals"],
            "mixture as estimate": aggregate(baseline, "test")["vocals"]}
    table = _write_table(report / "scores.md", rows)
    print(table)
    model_sdr, mix_sdr = (rows[k]["SDR"] for k in rows)
    summary["scores"] = {"vocals_sdr_model": model_sdr, "vocals_sdr_mixture": mix_sdr,
                         "improvement_db": model_sdr - mix_sdr, "tracks": len(evaluated)}
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (report / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"\n== 5. report in {report} (stems/, spectrograms.png, scores.md, summary.json)")
    print(f"vocals SDR {model_sdr:.2f} dB vs {mix_sdr:.2f} dB for the mixture: "
          f"{model_sdr - mix_sdr:+.2f} dB; demo took {summary['seconds']} s")
    return summary
