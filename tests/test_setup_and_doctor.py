"""Setup, optional dependencies and `mssbook doctor`: what a new user meets first."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mssbook
from mssbook import deps, profile
from mssbook.cli import main
from mssbook.errors import MissingDependencyError, MSSBookError

ROOT = Path(__file__).resolve().parents[1]


def _run_python(code: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_import_is_light():
    # Plots, musdb (needs ffmpeg) and torchaudio (needs a matching torch) load only when used.
    out = _run_python("""
        import sys, mssbook, mssbook.signal.transforms, mssbook.data
        heavy = [m for m in ("torchaudio", "musdb", "stempeg", "matplotlib", "museval") if m in sys.modules]
        print(heavy)
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.fixture
def broken_torchaudio(tmp_path):
    """A torchaudio that fails to load like a build for another torch does (OSError on import)."""
    pkg = tmp_path / "torchaudio"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "raise OSError('libtorchaudio.so: undefined symbol: _ZN3c1017RegisterOperators (simulated)')\n"
    )
    return {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_mssbook_works_where_torchaudio_cannot_load(broken_torchaudio):
    out = _run_python("""
        import numpy as np, mssbook
        from mssbook.signal.transforms import STFT
        import torch
        print(STFT(256, 64)(torch.zeros(1000)).shape)
        from mssbook.deps import import_torchaudio
        try:
            import_torchaudio()
        except mssbook.MissingDependencyError as exc:
            print("CLEAR:", exc)
    """, broken_torchaudio)
    assert out.returncode == 0, out.stderr
    assert "torch.Size([129, 16])" in out.stdout
    assert "CLEAR: torchaudio cannot be loaded with torch" in out.stdout
    assert "torchaudio==" in out.stdout  # names the fix


def test_doctor_reports_a_broken_torchaudio(broken_torchaudio):
    out = subprocess.run([sys.executable, "-m", "mssbook", "doctor", "--json"], capture_output=True, text=True,
                         env=dict(os.environ, **broken_torchaudio), timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["torchaudio_loads"] is False
    assert "undefined symbol" in report["torchaudio_detail"]


def test_doctor_text_and_json(capsys):
    assert main(["doctor"]) == 0
    text = capsys.readouterr().out
    for word in ("mssbook", "torch", "ffmpeg", "ffprobe", "torchaudio", "cuda", "memory", "status"):
        assert word in text
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mssbook"] == mssbook.__version__
    assert report["packages"]["torch"]
    assert report["memory"]["ram_total_gib"] > 0
    assert set(report["ffmpeg"]) == {"ffmpeg", "ffprobe"}


def test_missing_ffmpeg_is_reported_with_the_fix(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no ffmpeg, no ffprobe
    deps.ffmpeg_version.cache_clear()
    try:
        with pytest.raises(MissingDependencyError, match="apt-get install ffmpeg.*conda install.*brew install"):
            deps.require_ffmpeg("reading MUSDB18 stems")
        with pytest.raises(MissingDependencyError, match="ffmpeg and ffprobe not found"):
            deps.import_musdb()
        assert main(["doctor"]) == 0
        assert "ffmpeg/ffprobe missing" in capsys.readouterr().out
    finally:
        deps.ffmpeg_version.cache_clear()


def test_profiles(monkeypatch):
    monkeypatch.setenv("MSSBOOK_PROFILE", "ci")
    assert profile.current() == "ci" and profile.choose(default=10, ci=2) == 2
    monkeypatch.delenv("MSSBOOK_PROFILE")
    assert profile.current() == "default" and profile.choose(default=10, ci=2) == 10
    monkeypatch.setenv("MSSBOOK_PROFILE", "huge")
    with pytest.raises(MSSBookError, match="MSSBOOK_PROFILE='huge'.*default, ci"):
        profile.current()


def test_cli_errors_are_one_line_not_tracebacks(monkeypatch, capsys):
    monkeypatch.setenv("MSSBOOK_PROFILE", "nonsense")
    assert main(["toy", "--root", "unused"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mssbook toy: error:") and "Traceback" not in err


@pytest.mark.skipif(Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
                    reason="runs only inside the .venv that scripts/setup.sh builds")
def test_setup_script_is_idempotent():
    # A second run finds everything in place and returns at once, printing nothing.
    out = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == ""


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/demo.sh" in readme
    assert "bash scripts/test.sh" in ci


def _run_install_torch(tmp_path, fail_index: bool, **env):
    """scripts/install_torch.sh with a stand-in pip that records its arguments and, when asked,
    fails like pip does when an index cannot be reached."""
    log = tmp_path / "pip-calls.txt"
    fake = tmp_path / "fakepip"
    fake.write_text("#!/usr/bin/env bash\n"
                    f"echo \"$*\" >> {log}\n"
                    + ("case \"$*\" in *--index-url*) echo 'ERROR: No matching distribution found' >&2; exit 1;; esac\n"
                       if fail_index else "")
                    + "exit 0\n")
    fake.chmod(0o755)
    result = subprocess.run(["bash", str(ROOT / "scripts" / "install_torch.sh"), sys.executable],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "MSSBOOK_PIP": str(fake), "MSSBOOK_TORCH": "", **env})
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls


@pytest.mark.skipif(sys.platform != "linux", reason="the CPU-only index is tried on Linux")
def test_install_torch_tries_the_cpu_index_then_falls_back(tmp_path):
    result, calls = _run_install_torch(tmp_path, fail_index=True, MSSBOOK_GPU="0",
                                       MSSBOOK_TORCH_CPU_INDEX="http://127.0.0.1:9/")
    assert result.returncode == 0, result.stderr
    assert len(calls) == 2
    assert "--index-url http://127.0.0.1:9/" in calls[0] and "torch==2.11.0+cpu torchaudio==2.11.0+cpu" in calls[0]
    assert "--index-url" not in calls[1] and calls[1].endswith("torch==2.11.0 torchaudio==2.11.0")
    assert "did not serve torch 2.11.0+cpu" in result.stderr and "Traceback" not in result.stderr

    # the CPU index answers: one call; a GPU: PyPI's pair directly; MSSBOOK_TORCH: exactly that
    (tmp_path / "ok").mkdir()
    result, calls = _run_install_torch(tmp_path / "ok", fail_index=False, MSSBOOK_GPU="0")
    assert result.returncode == 0 and len(calls) == 1 and "+cpu" in calls[0]
    (tmp_path / "gpu").mkdir()
    result, calls = _run_install_torch(tmp_path / "gpu", fail_index=True, MSSBOOK_GPU="1")
    assert result.returncode == 0 and len(calls) == 1 and "--index-url" not in calls[0]
    (tmp_path / "pinned").mkdir()
    result, calls = _run_install_torch(tmp_path / "pinned", fail_index=True, MSSBOOK_TORCH="torch==2.10.0 torchaudio==2.10.0")
    assert result.returncode == 0 and len(calls) == 1 and calls[0].endswith("torch==2.10.0 torchaudio==2.10.0")


@pytest.mark.skipif(sys.platform != "linux", reason="the CPU-only index is tried on Linux")
def test_real_pip_fails_fast_on_an_unreachable_index(tmp_path):
    """What the fallback relies on: pip gives up at once (non-zero) when the index does not answer."""
    import time

    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "-q", "--index-url",
                             "http://127.0.0.1:9/", "--timeout", "5", "--retries", "0", "torch==2.11.0+cpu"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and time.perf_counter() - start < 60
