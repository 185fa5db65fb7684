"""The conda environment files carry every runtime dependency that pyproject.toml declares."""

import re
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names of packages that pip knows under another name
CONDA_TO_PIP = {"pytorch-cpu": "torch", "pytorch-gpu": "torch", "pytorch": "torch", "pysoundfile": "soundfile"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[\s]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _environment_packages(path: Path) -> tuple[set[str], dict]:
    env = yaml.safe_load(path.read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(item) for item in dep.get("pip", []) if not item.startswith("-")}
        else:
            conda_name = _name(dep)
            names.add(CONDA_TO_PIP.get(conda_name, conda_name))
    return names, env


def _runtime_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_name(req) for req in project["dependencies"]}


@pytest.mark.parametrize("filename", ["environment-cpu.yml", "environment-gpu.yml"])
def test_environment_file_has_every_runtime_dependency(filename):
    names, env = _environment_packages(ROOT / filename)
    missing = _runtime_dependencies() - names
    assert not missing, f"{filename} lacks runtime dependencies from pyproject.toml: {sorted(missing)}"
    # the system pieces that pip cannot provide, and torchaudio matched to torch by the channel
    assert {"ffmpeg", "libsndfile", "torchaudio", "python", "pip"} <= names
    assert any("-e" in item and "." in item for dep in env["dependencies"] if isinstance(dep, dict)
               for item in dep["pip"]), "the environment should pip-install mssbook itself"


def test_cpu_and_gpu_files_differ_only_in_the_torch_build():
    cpu, _ = _environment_packages(ROOT / "environment-cpu.yml")
    gpu, _ = _environment_packages(ROOT / "environment-gpu.yml")
    assert cpu == gpu
    assert "pytorch-cpu" in (ROOT / "environment-cpu.yml").read_text()
    assert "pytorch-gpu" in (ROOT / "environment-gpu.yml").read_text()
