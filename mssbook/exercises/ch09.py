"""Exercises of chapter 09 (official weights on real songs): kernels between frameworks, LSTM gate
orders, and checking a downloaded file."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np

from . import Wrong, exercise, expect_callable

# ----------------------------------------------------------------------------------------------
# 09.1 A Theano kernel in PyTorch
# ----------------------------------------------------------------------------------------------


def _theano_convolution(x: np.ndarray, kernel: np.ndarray, dilation: int) -> np.ndarray:
    """What a Keras-on-Theano Conv1D computes (valid padding): a true convolution.

    ``x``: (in, T); ``kernel``: (k, in, out) as Keras stores it. Theano's conv2d flips the kernel
    (``filter_flip=True``): y[o, t] = Σ_i Σ_j kernel[j, i, o] · x[i, t + d·(k − 1 − j)].
    """
    k, _, n_out = kernel.shape
    length = x.shape[1] - dilation * (k - 1)
    y = np.zeros((n_out, length))
    for j in range(k):
        shift = dilation * (k - 1 - j)
        y += np.einsum("io,it->ot", kernel[j], x[:, shift:shift + length])
    return y


def _torch_conv(x: np.ndarray, weight, dilation: int) -> np.ndarray:
    import torch

    w = torch.as_tensor(np.ascontiguousarray(np.asarray(weight, dtype=np.float64)))
    if tuple(w.shape[1:2]) != (x.shape[0],) or w.ndim != 3:
        raise Wrong(f"the weight has shape {tuple(w.shape)}; torch's Conv1d wants (out, in, k) with in = {x.shape[0]}")
    out = torch.nn.functional.conv1d(torch.as_tensor(x)[None], w, dilation=dilation)[0]
    return out.numpy()


@exercise(
    "09.1",
    "A Theano kernel in PyTorch",
    """
    The Wavenet's official checkpoints were written by Keras on Theano. Keras stores a Conv1D
    kernel as an array of shape (k, in, out), and Theano's convolution **flips** the kernel, as the
    mathematical convolution does: with dilation $d$, $y_o[t] = \\sum_i \\sum_j K[j, i, o]\\,
    x_i[t + d(k-1-j)]$. PyTorch's `conv1d` does not flip: $y_o[t] = \\sum_i \\sum_j W[o, i, j]\\,
    x_i[t + dj]$. Write `keras_to_torch(kernel)` that turns a Theano-trained Keras kernel
    (a NumPy array) into the `weight` of a `torch.nn.Conv1d` computing the same layer, at any
    dilation.
    """,
    hint="""
    Two steps: the axes (k, in, out) → (out, in, k), then the order of the taps. Compare the two sums
    term by term: which $j$ of $K$ multiplies $x_i[t + dj']$?
    """,
    answer="a function `keras_to_torch(kernel)` returning an array of shape (out, in, k)",
    notes="""
    `kernel.transpose(2, 1, 0)[:, :, ::-1]`. Without the flip the shapes fit and the weights load,
    but every kernel of length 2 or more is applied backwards in time: the model runs and separates
    badly. A model trained with TensorFlow's Keras backend needs no flip (TensorFlow correlates, as
    PyTorch does); the Keras 2 function `convert_all_kernels_in_model` existed for that reason.
    `mssbook.weights.keras` does this for every convolution of the Wavenet, and its test compares the
    result with the output of the official code.
    """,
    wrong_answers=(
        lambda: (lambda kernel: np.transpose(kernel, (2, 1, 0))),  # no flip
        lambda: (lambda kernel: np.reshape(kernel, (kernel.shape[2], kernel.shape[1], kernel.shape[0]))),
        lambda: (lambda kernel: np.transpose(kernel, (1, 2, 0))[:, :, ::-1]),  # (in, out, k)
    ),
)
def _check_09_1(answer):
    function = expect_callable(answer, "keras_to_torch")
    rng = np.random.default_rng(9)
    for k, n_in, n_out, dilation in ((2, 3, 4, 1), (3, 2, 5, 4), (3, 4, 4, 2)):
        kernel = rng.normal(size=(k, n_in, n_out))
        x = rng.normal(size=(n_in, 40))
        weight = function(kernel.copy())
        got = _torch_conv(x, weight, dilation)
        want = _theano_convolution(x, kernel, dilation)
        if got.shape != want.shape or not np.allclose(got, want, atol=1e-9):
            raise Wrong(f"a kernel of {k} taps, {n_in} → {n_out} channels, dilation {dilation}: torch's conv1d "
                        "with your weight computes another layer than Theano's convolution")
    return "the same layer in both frameworks, at every dilation"


@_check_09_1.solution
def _solve_09_1():
    def keras_to_torch(kernel):
        kernel = np.asarray(kernel)
        return np.ascontiguousarray(kernel.transpose(2, 1, 0)[:, :, ::-1])  # (out, in, k), taps reversed

    return keras_to_torch


# ----------------------------------------------------------------------------------------------
# 09.2 The gates of an LSTM
# ----------------------------------------------------------------------------------------------

_TORCH_ORDER = "ifgo"


def _reorder(weight: np.ndarray, order: str) -> np.ndarray:
    blocks = np.split(np.asarray(weight), 4, axis=0)
    by_gate = dict(zip(order, blocks))
    return np.concatenate([by_gate[g] for g in _TORCH_ORDER], axis=0)


@exercise(
    "09.2",
    "The gates of an LSTM",
    """
    An LSTM layer has four gates: input $i$, forget $f$, cell candidate $g$ and output $o$. Every
    framework stacks their weight matrices into one array of $4H$ rows, but not in the same order:
    PyTorch's `weight_ih_l0` holds the blocks of rows in the order `"ifgo"`, other frameworks use
    e.g. `"igfo"` or `"iofg"`. Write `to_torch_gates(weight, order)` that takes a NumPy array of
    shape (4H, D) whose row blocks are in the order `order` (a string of the four letters) and
    returns it with its blocks in PyTorch's order. The same function serves the biases (shape (4H,)).
    """,
    hint="""
    Split the rows into four equal blocks (`np.split(weight, 4, axis=0)`), name each block by its
    letter in `order`, and put them back together in the order i, f, g, o.
    """,
    answer="a function `to_torch_gates(weight, order)` returning an array of the same shape",
    notes="""
    A wrong order loads without any error, because all four blocks have the same shape: only a
    comparison of outputs with the original framework finds it. That is how the converter of
    Sony's nnabla files (`mssbook.weights.nnabla_umx`) established nnabla's order: by running
    nnabla's LSTM beside PyTorch's on the same input.
    """,
    wrong_answers=(
        lambda: (lambda weight, order: np.asarray(weight)),  # unchanged
        lambda: (lambda weight, order: np.asarray(weight)[::-1]),  # rows reversed
        lambda: (lambda weight, order: np.concatenate(  # inverse permutation
            [np.split(np.asarray(weight), 4, axis=0)[_TORCH_ORDER.index(g)] for g in order], axis=0)),
    ),
)
def _check_09_2(answer):
    function = expect_callable(answer, "to_torch_gates")
    rng = np.random.default_rng(92)
    for order, shape in (("igfo", (8, 3)), ("iofg", (12, 5)), ("fgoi", (16,)), ("ifgo", (4, 2))):
        weight = rng.normal(size=shape)
        got = np.asarray(function(weight.copy(), order))
        if got.shape != weight.shape or not np.array_equal(got, _reorder(weight, order)):
            raise Wrong(f"order {order!r}, shape {shape}: the blocks are not in PyTorch's order i, f, g, o")
    return "the four gates in PyTorch's order"


@_check_09_2.solution
def _solve_09_2():
    def to_torch_gates(weight, order):
        blocks = dict(zip(order, np.split(np.asarray(weight), 4, axis=0)))  # {gate letter: its rows}
        return np.concatenate([blocks[g] for g in "ifgo"], axis=0)

    return to_torch_gates


# ----------------------------------------------------------------------------------------------
# 09.3 Is this the official file?
# ----------------------------------------------------------------------------------------------


def _files(folder: Path) -> dict[str, bool]:
    """Files named ``<name>-<sha256 prefix>.pth`` (True: intact) and damaged or renamed ones (False)."""
    rng = np.random.default_rng(93)
    cases = {}
    for k in range(6):
        data = rng.bytes(1000 + 37 * k)
        digest = hashlib.sha256(data).hexdigest()
        prefix = digest[: (8 if k % 2 else 10)]
        intact = k in (0, 3, 4)
        if k == 1:
            data = data[:-1] + bytes([data[-1] ^ 1])  # one bit flipped
        elif k == 2:
            data = data[:500]  # an interrupted download
        elif k == 5:
            prefix = hashlib.sha256(b"another file").hexdigest()[:8]
        path = folder / f"vocals{k}-{prefix}.pth"
        path.write_bytes(data)
        cases[path.name] = intact
    return cases


@exercise(
    "09.3",
    "Is this the official file?",
    """
    Open-Unmix's releases (and torch hub's) name each weight file `<name>-<hash>.pth`, where
    `<hash>` is the beginning of the file's SHA-256 digest in hexadecimal (8 or more digits).
    `mssbook.pretrained` refuses a file whose digest does not start with it: an interrupted download
    or a damaged file would otherwise load as weights that happen to have the right shapes. Write
    `is_intact(path)` that returns True when the file at `path` (a `pathlib.Path`) matches the hash
    in its name and False otherwise.
    """,
    hint="""
    `hashlib.sha256(path.read_bytes()).hexdigest()` is the digest; the hash in the name is the part
    after the last `-` and before the suffix (`path.stem.rsplit("-", 1)[1]`). Compare as a prefix.
    """,
    answer="a function `is_intact(path)` returning a bool",
    notes="""
    `hashlib.sha256(path.read_bytes()).hexdigest().startswith(path.stem.rsplit("-", 1)[1])`. For
    files of hundreds of megabytes, feed the digest in blocks (`mssbook.hub` reads 1 MB at a time)
    instead of reading the whole file. A prefix of 8 hexadecimal digits is 32 bits: it catches
    accidents (truncation, a flipped bit), not an attacker, who would need the full digest.
    """,
    wrong_answers=(
        lambda: (lambda path: True),
        lambda: (lambda path: hashlib.md5(path.read_bytes()).hexdigest().startswith(path.stem.rsplit("-", 1)[1])),
        lambda: (lambda path: path.stat().st_size > 600),  # size as a proxy
    ),
)
def _check_09_3(answer):
    function = expect_callable(answer, "is_intact")
    with tempfile.TemporaryDirectory() as tmp:
        for name, intact in _files(Path(tmp)).items():
            got = function(Path(tmp) / name)
            if not isinstance(got, (bool, np.bool_)):
                raise Wrong(f"is_intact({name!r}) returned {type(got).__name__}; return True or False")
            if bool(got) != intact:
                raise Wrong(f"{name} is {'intact' if intact else 'damaged or not the named file'}, "
                            f"but is_intact says {bool(got)}")
    return "intact files accepted, damaged and renamed ones refused"


@_check_09_3.solution
def _solve_09_3():
    import hashlib

    def is_intact(path):
        expected = path.stem.rsplit("-", 1)[1]  # "vocals-b62c91ce" → "b62c91ce"
        return hashlib.sha256(path.read_bytes()).hexdigest().startswith(expected)

    return is_intact
