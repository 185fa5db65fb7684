"""The one trainer: learning, checkpoints, history, resume, and DistributedDataParallel on 2 CPUs."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from mssbook import models
from mssbook.checkpoints import load_model, read_checkpoint, save_checkpoint
from mssbook.errors import MSSBookError, OutputExistsError
from mssbook.training import Trainer, TrainConfig

SR = 8000


class ToneDataset(Dataset):
    """Vocals = a sine at a random pitch; the rest = noise. Deterministic per (seed, epoch, index)."""

    def __init__(self, n=8, seconds=1.0, seed=0):
        self.n, self.length, self.seed, self.epoch = n, int(seconds * SR), seed, 0
        self.seen = []

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.seen.append(i)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        t = np.arange(self.length) / SR
        vocals = 0.5 * np.sin(2 * np.pi * rng.uniform(200, 800) * t)
        noise = 0.1 * rng.standard_normal((2, self.length))
        refs = np.stack([np.stack([vocals, vocals]), noise]).astype(np.float32)  # (S=2, C, L)
        return torch.from_numpy(refs.sum(0)), torch.from_numpy(refs[:1])  # mixture, vocals only


def tiny_umx():
    torch.manual_seed(0)
    model = models.create("umx", preset="tutorial", target="vocals", sample_rate=SR, n_fft=512, n_hop=128,
                          hidden_size=16, nb_layers=1, bandwidth=4000)
    data = ToneDataset(n=4, seed=123)
    model.initialize_from_data(data[i][0].numpy() for i in range(len(data)))  # input statistics
    return model


def config(**kw):
    base = dict(epochs=2, batch_size=4, lr=1e-2, progress=False, seed=1)
    base.update(kw)
    return TrainConfig(**base)


def test_trainer_learns_and_writes_checkpoints(tmp_path):
    model = tiny_umx()
    trainer = Trainer(model, ToneDataset(n=16), ToneDataset(n=2, seed=99), output=tmp_path / "run",
                      config=config(epochs=6))
    history = trainer.fit()
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6]
    assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
    assert all(h["valid_loss"] is not None and h["lr"] == pytest.approx(1e-2) for h in history)
    saved = json.loads((tmp_path / "run" / "history.json").read_text())
    assert saved["model"] == "umx" and len(saved["epochs"]) == 6 and saved["parameters"] == model.num_parameters()
    last = read_checkpoint(tmp_path / "run" / "last.pt")
    assert last["epoch"] == 6 and {"optimizer", "scheduler", "rng", "train_config"} <= set(last)
    best = read_checkpoint(tmp_path / "run")  # a run folder resolves to best.pt
    assert best["best_loss"] == pytest.approx(min(h["valid_loss"] for h in history))
    # the checkpoint rebuilds the model without the training script
    rebuilt = load_model(tmp_path / "run" / "last.pt")
    x = torch.randn(1, 2, SR)
    model.eval()
    assert torch.allclose(rebuilt.separate(x, niter=0), model.separate(x, niter=0), atol=1e-6)
    # no temporary files are left next to the checkpoints
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best.pt", "history.json", "last.pt"]


def test_resume_continues_exactly(tmp_path):
    straight = Trainer(tiny_umx(), ToneDataset(), None, output=tmp_path / "a", config=config(epochs=3))
    straight.fit()
    first = Trainer(tiny_umx(), ToneDataset(), None, output=tmp_path / "b", config=config(epochs=1))
    first.fit()
    resumed = Trainer(tiny_umx(), ToneDataset(), None, output=tmp_path / "b", config=config(epochs=3))
    assert resumed.epoch == 1  # picked up last.pt
    resumed.fit()
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in straight.history])
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_cheap_validation_metrics_can_drive_early_stopping(tmp_path):
    from mssbook import metrics

    valid = ToneDataset(n=2, seed=99)
    trainer = Trainer(tiny_umx(), ToneDataset(n=8), valid, output=tmp_path / "run",
                      config=config(epochs=3, valid_metrics=("usdr", "csdr", "si_sdr"), monitor="usdr"))
    history = trainer.fit()
    for h in history:
        assert set(h["valid_usdr"]) == {"vocals"} and np.isfinite(h["valid_si_sdr"]["vocals"])
    # the logged uSDR is the mean over validation tracks of mssbook.metrics.usdr of the separation
    model = trainer.model.eval()
    expected = []
    for i in range(len(valid)):
        mixture, refs = valid[i]
        with torch.no_grad():
            est = model.separate(mixture[None])[0]
        expected.append(metrics.usdr({"vocals": refs[0].numpy()}, {"vocals": est[0].numpy()})["vocals"])
    assert history[-1]["valid_usdr"]["vocals"] == pytest.approx(np.mean(expected), abs=1e-4)
    # best.pt follows the highest uSDR
    best_epoch = max(history, key=lambda h: h["valid_usdr"]["vocals"])["epoch"]
    assert read_checkpoint(tmp_path / "run" / "best.pt")["epoch"] == best_epoch
    with pytest.raises(MSSBookError, match="monitor='usdr' must be 'loss', 'train_loss' or one of valid_metrics"):
        TrainConfig(monitor="usdr")
    with pytest.raises(MSSBookError, match="valid_metrics .*unknown"):
        TrainConfig(valid_metrics=("pesq",))


def test_monitor_the_training_loss(tmp_path):
    """monitor="train_loss" (the Wavenet seed's Keras monitor='loss'): best epochs follow the
    training loss even when validation tracks are scored."""
    trainer = Trainer(tiny_umx(), ToneDataset(), ToneDataset(n=2), output=tmp_path / "run",
                      config=config(epochs=4, monitor="train_loss"))
    history = trainer.fit()
    best = float("inf")
    for h in history:
        assert h["valid_loss"] is not None and h["best"] == (h["train_loss"] < best)
        best = min(best, h["train_loss"])
    assert trainer.best_loss == pytest.approx(best)



def test_output_folders_are_never_clobbered(tmp_path):
    Trainer(tiny_umx(), ToneDataset(), None, output=tmp_path / "run", config=config(epochs=1)).fit()
    with pytest.raises(OutputExistsError, match="already holds a training run"):
        Trainer(tiny_umx(), ToneDataset(), None, output=tmp_path / "run", config=config(), resume="never")
    other = models.create("umx", preset="tutorial", target="drums", sample_rate=SR, n_fft=512, n_hop=128,
                          hidden_size=16, nb_layers=1, bandwidth=4000)
    with pytest.raises(MSSBookError, match="holds a run of umx"):
        Trainer(other, ToneDataset(), None, output=tmp_path / "run", config=config())


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = tiny_umx()
    path = save_checkpoint(tmp_path / "last.pt", model, epoch=1)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, epoch=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_early_stopping_and_time_budget(tmp_path):
    # with lr 0 only BatchNorm statistics move, so the validation loss soon stops improving
    trainer = Trainer(tiny_umx(), ToneDataset(), ToneDataset(n=2), output=tmp_path / "p", config=config(epochs=50, lr=0.0, patience=2))
    history = trainer.fit()
    last_best = max(h["epoch"] for h in history if h["best"])
    assert len(history) == last_best + 2 < 50  # stopped exactly `patience` epochs after the best
    trainer = Trainer(tiny_umx(), ToneDataset(), None, output=tmp_path / "t", config=config(epochs=50, time_budget=0.0))
    assert len(trainer.fit()) == 1
    # min_epochs (the U-Net seed's): early stopping waits for it
    trainer = Trainer(tiny_umx(), ToneDataset(), ToneDataset(n=2), output=tmp_path / "m",
                      config=config(epochs=50, lr=0.0, patience=2, min_epochs=last_best + 5))
    assert len(trainer.fit()) == last_best + 5


@pytest.mark.parametrize("name, cls", [("rmsprop", torch.optim.RMSprop), ("sgd", torch.optim.SGD)])
def test_optimizer_by_name(tmp_path, name, cls):
    trainer = Trainer(tiny_umx(), ToneDataset(), None, output=tmp_path / name, config=config(optimizer=name, epochs=1))
    assert type(trainer.optimizer) is cls and trainer.optimizer.param_groups[0]["lr"] == 1e-2
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.fit()
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    with pytest.raises(MSSBookError, match="optimizer 'lamb'"):
        TrainConfig(optimizer="lamb")



def test_cosine_schedule_anneals_by_steps_or_by_the_time_budget(tmp_path):
    import math

    seen = []  # the learning rate of every step, as the optimizer applies it
    trainer = Trainer(tiny_umx(), ToneDataset(n=8), None, output=tmp_path / "run",
                      config=config(epochs=3, batch_size=2, lr_schedule="cosine", lr_warmup=0.25))
    step = trainer.optimizer.step
    trainer.optimizer.step = lambda *a, **k: (seen.append(trainer.optimizer.param_groups[0]["lr"]), step(*a, **k))[1]
    history = trainer.fit()
    n = 3 * 4  # epochs x batches per epoch
    expected = [1e-2 * (k / n / 0.25 if k / n < 0.25 else 0.5 * (1 + math.cos(math.pi * (k / n - 0.25) / 0.75)))
                for k in range(n)]
    assert seen == pytest.approx(expected, abs=1e-9)  # rises from 0, then anneals towards 0
    assert seen[0] == 0.0 and max(seen) == pytest.approx(1e-2, rel=0.1) and seen[-1] < 1e-3
    assert [h["lr"] for h in history] == pytest.approx([seen[3], seen[7], seen[11]])  # logged per epoch

    # with a time budget, the share of the budget spent drives it when it is ahead of the steps
    budgeted = Trainer(tiny_umx(), ToneDataset(n=8), None, output=tmp_path / "budget",
                       config=config(epochs=1000, lr_schedule="cosine", time_budget=100.0))
    budgeted._fit_start -= 75.0  # three quarters of the budget spent
    assert budgeted.run_progress(0, 4) == pytest.approx(0.75, abs=0.01)
    budgeted._set_cosine_lr(0, 4)
    assert budgeted.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.5 * (1 + math.cos(0.75 * math.pi)), rel=0.05)
    budgeted._fit_start -= 1000.0  # past the budget: zero, never negative
    budgeted._set_cosine_lr(0, 4)
    assert budgeted.optimizer.param_groups[0]["lr"] == 0.0


def test_bad_settings_are_clear(tmp_path):
    with pytest.raises(MSSBookError, match="lr_schedule"):
        TrainConfig(lr_schedule="one_cycle")
    with pytest.raises(MSSBookError, match="lr_warmup"):
        TrainConfig(lr_schedule="cosine", lr_warmup=1.0)
    trainer = Trainer(tiny_umx(), ToneDataset(n=2), None, output=tmp_path / "x", config=config(batch_size=4))
    with pytest.raises(MSSBookError, match="no full batch"):
        trainer.fit()


DDP_SCRIPT = textwrap.dedent("""
    import os, sys, torch
    sys.path.insert(0, os.environ["TEST_DIR"])
    from test_train import ToneDataset, tiny_umx, config
    from mssbook.training import Trainer
    import mssbook.training
    rank = int(os.environ["RANK"])
    if rank == 1:  # rank 1's clock runs 10^4 times fast: only rank 0's measure of the time budget may count
        real = mssbook.training.time.perf_counter
        mssbook.training.time = type("Clock", (), {"perf_counter": staticmethod(lambda: 1e4 * real())})
    data = ToneDataset(n=16)
    trainer = Trainer(tiny_umx(), data, ToneDataset(n=2, seed=5), output=os.environ["OUT"] + "/run",
                      config=config(epochs=2, time_budget=500.0))
    trainer.fit()
    torch.save({"params": {k: v.detach() for k, v in trainer.model.state_dict().items()}, "seen": data.seen,
                "history": trainer.history}, os.environ["OUT"] + f"/rank{rank}.pt")
""")


def test_distributed_training_on_two_cpu_processes(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    env = dict(os.environ, OUT=str(tmp_path), TEST_DIR=str(Path(__file__).parent), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29517", str(script)],
                         capture_output=True, text=True, env=env, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    for name in r0["params"]:
        assert torch.equal(r0["params"][name], r1["params"][name]), f"ranks disagree on {name}"  # weights and BN stats
    initial = tiny_umx().state_dict()
    assert not torch.equal(initial["target_models.vocals.fc1.weight"], r0["params"]["target_models.vocals.fc1.weight"])
    # each rank drew different excerpts (disjoint halves of every epoch), and both logged the same losses
    assert not set(r0["seen"][:8]) & set(r1["seen"][:8])
    assert [h["train_loss"] for h in r0["history"]] == [h["train_loss"] for h in r1["history"]]
    assert len(r0["history"]) == len(r1["history"]) == 2  # rank 1's clock said stop after epoch 1: rank 0 decides
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best.pt", "history.json", "last.pt"]
    assert json.loads((tmp_path / "run" / "history.json").read_text())["world_size"] == 2
