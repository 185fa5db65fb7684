# -*- coding: utf-8 -*-
"""Make the fixtures of ``tests/test_weights_keras.py`` with the official Wavenet code (Keras/Theano).

Official code: https://github.com/francesclluis/source-separation-wavenet, commit
c80bb531f32d9fb7de21c42d6f3a016bc2cd72b3 (2020-01-31): ``models.py``, ``layers.py``, ``util.py``,
``separate.py``, ``sessions/<mode>/config.json``. Nothing of it is stored in mssbook: pass a
checkout with ``--repo``.

This script is Python 2.7 code on purpose (the official code is: ``print`` statements, integer
``/``), run in a side environment with the versions the official ``environment.yml`` pins, which
all still install from PyPI::

    ~/.pyenv/versions/2.7.18/bin/python -m pip install --target /tmp/venvtool "virtualenv<20.22"
    PYTHONPATH=/tmp/venvtool ~/.pyenv/versions/2.7.18/bin/python -m virtualenv /work/venvs/keras
    /work/venvs/keras/bin/pip install numpy==1.14.2 scipy==1.0.0 h5py==2.7.1 keras==2.1.5 \\
        theano==1.0.1 pyyaml==3.12 six==1.11.0 tqdm==4.19.7

(CPython 2.7.18, numpy 1.14.2, scipy 1.0.0, h5py 2.7.1, Keras 2.1.5, Theano 1.0.1 compiling its C
ops with gcc 12, tqdm 4.19.7; ``soundfile`` is not installed: the fixtures write no audio, and an
empty stand-in module satisfies ``util.py``'s import.) How the fixtures were made (from the mssbook
repository root; about a minute, most of it Theano compiling)::

    git clone https://github.com/francesclluis/source-separation-wavenet /tmp/sswavenet
    git -C /tmp/sswavenet checkout c80bb531f32d9fb7de21c42d6f3a016bc2cd72b3
    KERAS_BACKEND=theano THEANO_FLAGS=device=cpu,floatX=float32 \\
        /work/venvs/keras/bin/python tools/official_keras_wavenet.py --repo /tmp/sswavenet \\
        --out tests/fixtures/official/wavenet

For each mode (``multi-instrument``, ``singing-voice``) the script takes the official
``sessions/<mode>/config.json`` and reduces the model (``REDUCED`` below: 2 stacks of dilations
1, 2, 4, 8, residual 6 and skip 5 channels, head convs 7 (k 3) and 5 (k 5), target field 13; the
receptive field is 61, windows of 73 samples; R // 2 = 30 is not a whole number of target fields,
as 4092 is not one of 1601 in the paper model), then

1. builds the official model class (``MultiInstrumentSeparationWavenet`` /
   ``SingingVoiceSeparationWavenet``) in a fresh session folder, which writes the session's
   ``config.json`` as the official training does;
2. gives every weight seeded random values (Glorot-uniform kernels as Keras' default, and a random
   output bias instead of Keras' zeros so that the bias mapping is tested);
3. saves a checkpoint with the official trainer's own ``ModelCheckpoint`` callback
   (``get_callbacks()[1]``, a full ``model.save``: ``model_weights`` plus ``optimizer_weights``
   of the compiled Adam, as the released ``checkpoint.000NN-0.hdf5`` files);
4. builds the official model again from the session's ``config.json`` and that checkpoint, as
   ``main.py --mode inference --load_checkpoint`` does, and runs
   * the network (``separate_batch``) on 3 seeded random windows of ``input_length`` samples, and
   * the official track inference ``separate.separate_sample`` (windows every target field, batch
     4, the last window zero-padded, output cut to L − R + 1 samples, residual source = mixture
     minus the heads) on a seeded random mono mixture of 200 samples; ``util.write_wav`` is
     replaced by a function that keeps the arrays instead of writing files;

and writes ``<out>/<mode>/checkpoint.00001-0.000.hdf5``, ``<out>/<mode>/config.json`` and
``<out>/<mode>/io.npz`` (``training.path`` of the stored ``config.json`` is set back to the
official ``sessions/<mode>``, the temporary folder's name being of no use; ``windows``, ``heads``: (3, n_out, T + 2·padding) float32 network
outputs; ``mixture``, ``separated``: {source: array} of the track inference, as ``sep_<source>``).
"""

from __future__ import division, print_function

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types

COMMIT = "c80bb531f32d9fb7de21c42d6f3a016bc2cd72b3"
MODES = ("multi-instrument", "singing-voice")
SEED = {"multi-instrument": 1501, "singing-voice": 1502}
REDUCED = {
    "num_stacks": 2,
    "dilations": 3,
    "filters": {"depths": {"res": 6, "skip": 5, "final": [7, 5]},
                "lengths": {"res": 3, "skip": 1, "final": [3, 5]}},
    "target_field_length": 13,
    "target_padding": 1,
}
MIXTURE_LENGTH = 200
WINDOW_BATCH = 4


def git_commit(repo):
    try:
        return subprocess.check_output(["git", "-C", repo, "rev-parse", "HEAD"]).decode().strip()
    except Exception:
        return None


def reduced_config(repo, mode, session):
    with open(os.path.join(repo, "sessions", mode, "config.json")) as f:
        config = json.load(f)
    for key, value in REDUCED.items():
        config["model"][key] = copy.deepcopy(value)
    config["training"]["path"] = session
    config["training"]["batch_size"] = WINDOW_BATCH
    return config


def randomise(keras_model, rng):
    """Seeded Glorot-uniform kernels; the output conv's bias random too."""
    for layer in keras_model.layers:
        values = []
        for weight in layer.get_weights():
            if weight.ndim == 3:  # Conv1D kernel (k, in, out)
                fan_in, fan_out = weight.shape[0] * weight.shape[1], weight.shape[0] * weight.shape[2]
                limit = (6.0 / (fan_in + fan_out)) ** 0.5
                values.append(rng.uniform(-limit, limit, weight.shape).astype(weight.dtype))
            else:
                values.append(rng.uniform(-0.1, 0.1, weight.shape).astype(weight.dtype))
        if values:
            layer.set_weights(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", required=True, help="checkout of francesclluis/source-separation-wavenet")
    parser.add_argument("--out", default="tests/fixtures/official/wavenet")
    args = parser.parse_args()
    repo, out = os.path.abspath(args.repo), os.path.abspath(args.out)
    commit = git_commit(repo)
    if commit is not None and commit != COMMIT:
        print("warning: the checkout is at %s, the fixtures were made at %s" % (commit, COMMIT))

    os.environ.setdefault("KERAS_BACKEND", "theano")
    if "soundfile" not in sys.modules:
        try:
            import soundfile  # noqa: F401
        except ImportError:  # util.py imports it; no audio file is read or written here
            sys.modules["soundfile"] = types.ModuleType("soundfile")
    sys.path.insert(0, repo)
    sys.setrecursionlimit(50000)  # as main.py's set_system_settings
    import numpy as np
    import keras
    import models
    import separate
    import util

    assert keras.backend.backend() == "theano", "set KERAS_BACKEND=theano"
    classes = {"multi-instrument": models.MultiInstrumentSeparationWavenet,
               "singing-voice": models.SingingVoiceSeparationWavenet}
    captured = {}

    def keep_wav(x, filename, sample_rate):
        captured[os.path.basename(filename)[:-4]] = np.array(x, dtype=np.float64)

    util.write_wav = keep_wav
    work = tempfile.mkdtemp(prefix="sswavenet-")
    try:
        for mode in MODES:
            rng = np.random.RandomState(SEED[mode])
            session = os.path.join(work, mode)
            config = reduced_config(repo, mode, session)
            trainer = classes[mode](copy.deepcopy(config))
            randomise(trainer.model, rng)
            trainer.model._make_train_function()  # the compiled Adam's slots, as in a trained checkpoint
            checkpoint = trainer.get_callbacks()[1]
            checkpoint.set_model(trainer.model)
            checkpoint.on_epoch_end(0, {"loss": 0.0, "val_loss": 0.0})
            (name,) = os.listdir(os.path.join(session, "checkpoints"))

            with open(os.path.join(session, "config.json")) as f:
                session_config = json.load(f)
            model = classes[mode](session_config, load_checkpoint=os.path.join(session, "checkpoints", name))
            windows = (0.5 * rng.randn(3, model.input_length)).astype(np.float32)
            heads = model.separate_batch({"data_input": windows})
            heads = np.stack([np.asarray(h) for h in heads[: 3 if mode == "multi-instrument" else 1]], axis=1)
            mixture = 0.5 * rng.randn(MIXTURE_LENGTH)
            captured.clear()
            separate.separate_sample(model, {"mixture": mixture}, WINDOW_BATCH, "track",
                                     config["dataset"]["sample_rate"], work, mode)

            target = os.path.join(out, mode)
            if not os.path.isdir(target):
                os.makedirs(target)
            shutil.copy(os.path.join(session, "checkpoints", name), os.path.join(target, name))
            session_config["training"]["path"] = "sessions/" + mode
            util.pretty_json_dump(session_config, os.path.join(target, "config.json"))
            arrays = {"windows": windows, "heads": heads.astype(np.float32), "mixture": mixture}
            for key, value in captured.items():
                arrays["sep_" + key.split("_", 1)[1]] = value
            np.savez_compressed(os.path.join(target, "io.npz"), **arrays)
            print("%s: %s, heads %s, separated %s, commit %s" % (
                mode, name, heads.shape, sorted(k for k in arrays if k.startswith("sep_")), commit))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
