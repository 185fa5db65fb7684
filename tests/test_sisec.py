"""The shipped table of published scores, its loader, and the SiSEC-style boxplot."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mssbook import sisec
from mssbook.errors import MSSBookError

TARGETS = ("vocals", "drums", "bass", "other")

# The published medians (vocals, drums, bass, other) that data/published_scores.csv must hold.
EXPECTED = {
    "UMX": (6.32, 5.73, 5.23, 4.02),
    "UMXHQ": (6.25, 6.04, 5.07, 4.28),
    "UMXL": (7.21, 7.15, 6.02, 4.89),
    "X-UMX": (6.612, 6.471, 5.426, 4.639),
    "D3Net": (7.24, 7.01, 5.25, 4.53),
    "TFC-TDF U-Net (large)": (7.98, 6.11, 5.94, 5.02),
    "BSRNN": (10.01, 9.01, 7.22, 6.70),
}


def test_the_table_ships_in_the_checkout():
    path = sisec.published_scores_path()
    assert path.name == "published_scores.csv" and path.parent.name == "data"


def test_every_published_score_is_there():
    rows = sisec.load_published_scores()
    by_key = {(r.model, r.target): r for r in rows}
    assert len(by_key) == len(rows), "one row per model and target"
    for model, values in EXPECTED.items():
        for target, value in zip(TARGETS, values):
            assert (model, target) in by_key, f"no {model} {target} row"
            assert by_key[(model, target)].sdr == pytest.approx(value, abs=1e-9)
    vocals_only = by_key[("TFC-TDF U-Net (17 blocks)", "vocals")]
    assert vocals_only.sdr == pytest.approx(7.12)
    assert not any(r.model == "TFC-TDF U-Net (17 blocks)" and r.target != "vocals" for r in rows)
    assert {r.target for r in rows} == set(TARGETS)
    assert all(r.source and r.metric for r in rows), "every row names its source and metric"


def test_the_caveats_are_in_the_table():
    rows = sisec.load_published_scores()
    datasets = {r.model: r.dataset for r in rows}
    assert datasets["BSRNN"] == "MUSDB18-HQ"
    assert {datasets[m] for m in EXPECTED if m != "BSRNN"} == {"MUSDB18"}
    umxl = next(r for r in rows if r.model == "UMXL")
    assert "extra" in umxl.note


def test_published_medians_label_other_datasets():
    medians = sisec.published_medians()
    assert medians["UMX"] == dict(zip(TARGETS, EXPECTED["UMX"]))
    assert "BSRNN (MUSDB18-HQ)" in medians and "BSRNN" not in medians
    assert list(sisec.published_medians(label_dataset=False))[:3] == ["UMX", "UMXHQ", "UMXL"]
    picked = sisec.published_medians(models=["D3Net", "UMX"])
    assert list(picked) == ["D3Net", "UMX"]
    with pytest.raises(MSSBookError, match="no published scores for 'Demucs'"):
        sisec.published_medians(models=["Demucs"])
    text = sisec.format_published(picked)
    assert text.splitlines()[1].split()[1:] == ["7.24", "7.01", "5.25", "4.53"]


def test_a_missing_or_broken_table_is_named(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(MSSBookError, match="nowhere.csv"):
        sisec.load_published_scores(missing)
    broken = tmp_path / "broken.csv"
    broken.write_text("model,target,SDR\nUMX,vocals,6.32\n")
    with pytest.raises(MSSBookError, match="broken.csv lacks the column"):
        sisec.load_published_scores(broken)
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(sisec.COLUMNS) + "\nUMX,vocals,six,MUSDB18,m,s,n\n")
    with pytest.raises(MSSBookError, match="line 2: SDR 'six'"):
        sisec.load_published_scores(bad)
    # no checkout and no copy in $MSSBOOK_DATA: the error names the file and where it was looked for
    monkeypatch.setattr(sisec, "checkout_root", lambda: None)
    monkeypatch.setenv("MSSBOOK_DATA", str(tmp_path))
    with pytest.raises(MSSBookError, match="published_scores.csv"):
        sisec.load_published_scores()


def test_scores_boxplot_draws_one_panel_per_target():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mssbook.evaluation import ScoreTable
    from mssbook.plots import scores_boxplot

    rng = np.random.default_rng(0)
    tracks = [f"song {i}" for i in range(5)]
    oracle = {t: {target: {"SDR": float(rng.normal(12, 2)), "SIR": 20.0} for target in TARGETS} for t in tracks}
    oracle["song 0"]["bass"]["SDR"] = math.nan  # a track without valid frames is left out
    model = ScoreTable(scores={}, per_track={t: {"vocals": {"SDR": float(rng.normal(5, 1))},
                                                 "accompaniment": {"SDR": 9.0}} for t in tracks})
    lists = {"vocals": [1.0, 2.0, math.nan], "drums": [0.5, 1.5]}
    published = sisec.published_medians(models=["UMX", "BSRNN"])
    fig = scores_boxplot({"IRM2": oracle, "UMX (toy)": model, "lists": lists}, published,
                         targets=TARGETS, title="toy test songs")
    try:
        assert len(fig.axes) == len(TARGETS)
        assert [ax.get_title() for ax in fig.axes] == list(TARGETS)
        vocals = fig.axes[0]
        labels = [t.get_text() for t in vocals.get_xticklabels()]
        assert labels == ["IRM2", "UMX (toy)", "lists", "UMX", "BSRNN (MUSDB18-HQ)"]
        # the published medians are markers at their values
        marked = sorted(float(line.get_ydata()[0]) for line in vocals.lines if line.get_marker() in ("D", "s"))
        assert marked == pytest.approx([6.32, 10.01])
        assert len(vocals.patches) >= 3  # three boxes (+ the grey band)
        assert vocals.get_ylabel() == "SDR (dB)"
        assert fig.axes[0].get_shared_y_axes().joined(fig.axes[0], fig.axes[3])
    finally:
        plt.close(fig)
    # default panels: the targets found, vocals/drums/bass/other first, accompaniment last
    fig = scores_boxplot({"UMX (toy)": model, "IRM2": oracle})
    try:
        assert [ax.get_title() for ax in fig.axes] == ["vocals", "drums", "bass", "other", "accompaniment"]
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="no targets"):
        scores_boxplot({})


def test_an_installed_copy_is_found_without_a_checkout(tmp_path, monkeypatch):
    """pip (e.g. on Colab) installs the table into <prefix>/share/mssbook (pyproject data-files)."""
    import shutil
    import sysconfig

    shipped = sisec.published_scores_path()
    prefix = tmp_path / "prefix"
    (prefix / "share" / "mssbook").mkdir(parents=True)
    shutil.copy(shipped, prefix / "share" / "mssbook" / shipped.name)
    monkeypatch.setattr(sisec, "checkout_root", lambda: None)
    monkeypatch.setattr(sisec, "data_dir", lambda: tmp_path / "empty")
    real_get_path = sysconfig.get_path
    monkeypatch.setattr(sysconfig, "get_path", lambda name, *a, **k: str(prefix) if name == "data" else real_get_path(name, *a, **k))
    assert sisec.published_scores_path() == prefix / "share" / "mssbook" / shipped.name
    (prefix / "share" / "mssbook" / shipped.name).unlink()
    with pytest.raises(MSSBookError, match="published_scores.csv"):
        sisec.published_scores_path()


def test_a_user_install_copy_is_found(tmp_path, monkeypatch):
    """`pip install --user` puts the data files under the user base, not the interpreter's prefix."""
    import shutil
    import sysconfig

    shipped = sisec.published_scores_path()
    user = tmp_path / "userbase"
    (user / "share" / "mssbook").mkdir(parents=True)
    shutil.copy(shipped, user / "share" / "mssbook" / shipped.name)
    monkeypatch.setattr(sisec, "checkout_root", lambda: None)
    monkeypatch.setattr(sisec, "data_dir", lambda: tmp_path / "empty")
    user_scheme = sysconfig.get_preferred_scheme("user")
    real_get_path = sysconfig.get_path

    def get_path(name, scheme=None, *a, **k):
        if name == "data":
            return str(user) if scheme == user_scheme else str(tmp_path / "prefix")
        return real_get_path(name, scheme, *a, **k) if scheme else real_get_path(name, *a, **k)

    monkeypatch.setattr(sysconfig, "get_path", get_path)
    assert sisec.published_scores_path() == user / "share" / "mssbook" / shipped.name
