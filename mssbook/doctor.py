"""``mssbook doctor``: what a user pastes into a bug report.

Reports versions, ffmpeg/ffprobe, whether torchaudio loads with this torch, CUDA/MPS, the datasets
found, free memory and disk. Every probe is guarded: the doctor itself never crashes on a broken
environment, it says what is broken.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import sys
from pathlib import Path

from . import __version__, paths
from . import profile as run_profile
from .deps import ffmpeg_paths, ffmpeg_version, torchaudio_status

PACKAGES = (
    "numpy", "scipy", "torch", "torchaudio", "soundfile", "musdb", "museval", "stempeg",
    "tqdm", "matplotlib", "ipywidgets", "nbval",
)  # fmt: skip


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _count_tracks(root: Path) -> dict[str, dict[str, int]]:
    """Tracks per subset in a MUSDB18 tree, counted from file names (no decoding)."""
    counts = {}
    for subset in ("train", "test"):
        folder = root / subset
        if folder.is_dir():
            counts[subset] = {
                "stems": len(list(folder.glob("*.stem.mp4"))),
                "wav": len(list(folder.glob("*/mixture.wav"))),
            }
    return counts


def _datasets() -> list[dict]:
    found = []
    env_root = os.environ.get("MUSDB_PATH")
    if env_root:
        root = Path(env_root).expanduser()
        found.append({"name": "MUSDB_PATH", "path": str(root), "exists": root.is_dir(), "tracks": _count_tracks(root)})
    data = paths.data_dir()
    for name in ("toy", "toy-ci"):
        root = data / name
        if root.is_dir():
            found.append({"name": f"toy ({name})", "path": str(root), "exists": True, "tracks": _count_tracks(root)})
    preview = Path("~/MUSDB18/MUSDB18-7").expanduser()
    if preview.is_dir():
        found.append({"name": "MUSDB18 7 s previews", "path": str(preview), "exists": True, "tracks": _count_tracks(preview)})
    shared = paths.shared_data_dir()
    if shared is not None:
        found.append({"name": "shared excerpts", "path": str(shared), "exists": True,
                      "tracks": _count_tracks(shared / "musdb18-sample")})
    return found


def _accelerators() -> dict:
    info: dict = {"cuda": False, "mps": False}
    try:
        import torch
    except Exception as exc:  # pragma: no cover - torch is a hard dependency
        return {"error": f"torch does not import: {exc}"}
    info["torch_threads"] = torch.get_num_threads()
    try:
        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["cuda_version"] = torch.version.cuda
            info["devices"] = [
                f"{torch.cuda.get_device_name(i)} ({torch.cuda.get_device_properties(i).total_memory / 2**30:.1f} GiB)"
                for i in range(torch.cuda.device_count())
            ]
    except Exception as exc:
        info["cuda_error"] = str(exc)
    mps = getattr(torch.backends, "mps", None)
    info["mps"] = bool(mps is not None and mps.is_available())
    return info


def _memory() -> dict:
    out: dict = {}
    try:
        import psutil

        vm = psutil.virtual_memory()
        out["ram_total_gib"] = round(vm.total / 2**30, 1)
        out["ram_available_gib"] = round(vm.available / 2**30, 1)
    except Exception as exc:
        out["ram_error"] = str(exc)
    data = paths.data_dir()
    probe = data if data.exists() else data.parent
    try:
        out["disk_free_gib"] = round(shutil.disk_usage(probe).free / 2**30, 1)
        out["disk_path"] = str(probe)
    except OSError as exc:
        out["disk_error"] = str(exc)
    return out


def collect() -> dict:
    """Gather the report as a plain dict (JSON-serialisable)."""
    try:
        import soundfile

        libsndfile = soundfile.__libsndfile_version__
    except Exception as exc:
        libsndfile = f"unavailable: {exc}"
    ta_ok, ta_detail = torchaudio_status()
    try:
        active_profile = run_profile.current()
    except Exception as exc:
        active_profile = f"invalid: {exc}"
    return {
        "mssbook": __version__,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "profile": active_profile,
        "data_dir": str(paths.data_dir()),
        "packages": {name: _version(name) for name in PACKAGES},
        "libsndfile": libsndfile,
        "torchaudio_loads": ta_ok,
        "torchaudio_detail": ta_detail,
        "ffmpeg": ffmpeg_paths(),
        "ffmpeg_version": ffmpeg_version(),
        "accelerators": _accelerators(),
        "memory": _memory(),
        "datasets": _datasets(),
    }


def format_report(report: dict) -> str:
    """Human-readable text of :func:`collect`'s report."""
    ok, bad = "ok", "MISSING"
    lines = [
        f"mssbook {report['mssbook']}  python {report['python']} ({report['executable']})",
        f"platform      {report['platform']}, {report['cpu_count']} CPU cores",
        f"profile       {report['profile']}   data dir {report['data_dir']}",
        "packages      " + ", ".join(f"{k} {v or bad}" for k, v in report["packages"].items()),
        f"libsndfile    {report['libsndfile']}",
        f"torchaudio    {'loads: ' if report['torchaudio_loads'] else 'does NOT load: '}{report['torchaudio_detail']}",
    ]
    for name, path in report["ffmpeg"].items():
        lines.append(f"{name:<13} {path or bad}")
    if report["ffmpeg_version"]:
        lines.append(f"              {report['ffmpeg_version']}")
    acc = report["accelerators"]
    if "error" in acc:
        lines.append(f"accelerators  {acc['error']}")
    else:
        cuda = ", ".join(acc.get("devices", [])) if acc["cuda"] else "no"
        cuda += f" (CUDA {acc['cuda_version']})" if acc.get("cuda_version") else ""
        lines.append(f"cuda          {cuda}{' ' + acc['cuda_error'] if acc.get('cuda_error') else ''}")
        lines.append(f"mps           {'yes' if acc['mps'] else 'no'}   torch threads {acc.get('torch_threads')}")
    mem = report["memory"]
    lines.append(
        f"memory        {mem.get('ram_available_gib', '?')} GiB free of {mem.get('ram_total_gib', '?')} GiB; "
        f"disk {mem.get('disk_free_gib', '?')} GiB free at {mem.get('disk_path', '?')}"
    )
    if not report["datasets"]:
        lines.append("datasets      none found (generate toy songs with `mssbook toy`, or set MUSDB_PATH)")
    for ds in report["datasets"]:
        tracks = ", ".join(
            f"{subset}: {c['stems']} stems + {c['wav']} wav" for subset, c in ds["tracks"].items()
        ) or ("no train/ or test/ folder" if ds["exists"] else "path does not exist")
        lines.append(f"dataset       {ds['name']}: {ds['path']} ({tracks})")
    problems = []
    if not all(report["ffmpeg"].values()):
        problems.append("ffmpeg/ffprobe missing: musdb and mp3/mp4 decoding will not work")
    if not report["torchaudio_loads"]:
        problems.append("torchaudio does not load: only the features that say they need it are affected")
    lines.append("status        " + ("; ".join(problems) if problems else ok))
    return "\n".join(lines)
