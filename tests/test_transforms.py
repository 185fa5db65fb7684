"""STFT/ISTFT and spectrogram views: shapes, frame counts of the reference systems, reconstruction."""

import numpy as np
import pytest
import torch

from mssbook.signal.transforms import (
    ISTFT,
    STFT,
    bandwidth_to_max_bin,
    bin_frequencies,
    excerpt_samples,
    from_complex_channels,
    magnitude,
    n_frames,
    to_complex_channels,
)

SR = 44100


@pytest.fixture
def stereo_batch():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, 2, SR, generator=gen)  # (batch, channels, samples): 1 s


@pytest.mark.parametrize(
    "seconds, n_fft, hop, center, expected",
    [
        (6.0, 4096, 1024, False, 255),  # UMX training (spec §1.1)
        (6.0, 4096, 1024, True, 259),  # UMX inference, D3Net, X-UMX (spec §1.1, §3.1)
        (3.0, 2048, 512, True, 259),  # BSRNN 3 s excerpt (spec §4.1)
    ],
)
def test_frame_counts_match_the_spec(seconds, n_fft, hop, center, expected):
    samples = int(seconds * SR)
    assert n_frames(samples, n_fft, hop, center) == expected
    stft = STFT(n_fft, hop, center=center)
    spec = stft(torch.zeros(1, 2, samples))
    assert spec.shape == (1, 2, n_fft // 2 + 1, expected)
    assert stft.frames(samples) == expected


def test_unet_excerpt_gives_exact_frame_count():
    # TFC-TDF large: 128 frames of hop 1024 (spec §5.4) from hop * (num_frame - 1) samples.
    samples = excerpt_samples(128, 1024)
    assert samples == 130048
    assert STFT(4096, 1024, center=True)(torch.zeros(samples)).shape == (2049, 128)


def test_open_unmix_bandwidth_gives_1487_bins():
    assert bandwidth_to_max_bin(44100, 4096, 16000) == 1487
    freqs = bin_frequencies(44100, 4096)
    assert freqs[1486] <= 16000 < freqs[1487]
    assert bandwidth_to_max_bin(44100, 4096, 22050) == 2049


@pytest.mark.parametrize("n_fft, hop", [(4096, 1024), (2048, 512), (1024, 256)])
def test_perfect_reconstruction(stereo_batch, n_fft, hop):
    stft, istft = STFT(n_fft, hop, center=True), ISTFT(n_fft, hop, center=True)
    audio = stereo_batch.double()
    back = istft(stft(audio), length=audio.shape[-1])
    assert back.shape == audio.shape
    assert torch.max(torch.abs(back - audio)) < 1e-10


def test_stft_agrees_with_a_direct_dft_of_one_frame():
    # Frame 3 of a centred STFT is the DFT of the Hann-windowed samples around 3 * hop.
    n_fft, hop = 512, 128
    x = torch.randn(4000, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    spec = STFT(n_fft, hop, center=True)(x)
    padded = np.pad(x.numpy(), n_fft // 2, mode="reflect")
    frame = padded[3 * hop : 3 * hop + n_fft] * torch.hann_window(n_fft).double().numpy()
    np.testing.assert_allclose(spec[:, 3].numpy(), np.fft.rfft(frame), atol=1e-9)


def test_sine_peaks_in_its_bin():
    n_fft = 4096
    f0 = bin_frequencies(SR, n_fft)[100]  # exactly on bin 100
    t = torch.arange(SR) / SR
    mag = magnitude(STFT(n_fft, 1024)(torch.sin(2 * torch.pi * f0 * t)))
    assert torch.all(mag[:, 2:-2].argmax(dim=0) == 100)


def test_magnitude_power(stereo_batch):
    spec = STFT(1024, 256)(stereo_batch)
    assert torch.allclose(magnitude(spec, power=2.0), spec.real**2 + spec.imag**2, rtol=1e-5, atol=1e-6)
    assert torch.all(magnitude(spec) >= 0)


def test_complex_as_channels_order_and_round_trip(stereo_batch):
    spec = STFT(1024, 256)(stereo_batch)  # (B, 2, F, T)
    cac = to_complex_channels(spec)  # [Re L, Re R, Im L, Im R]
    assert cac.shape == (2, 4, 513, spec.shape[-1])
    assert torch.equal(cac[:, 0], spec[:, 0].real) and torch.equal(cac[:, 1], spec[:, 1].real)
    assert torch.equal(cac[:, 2], spec[:, 0].imag) and torch.equal(cac[:, 3], spec[:, 1].imag)
    assert torch.equal(from_complex_channels(cac), spec)
    with pytest.raises(ValueError):
        from_complex_channels(cac[:, :3])


def test_window_is_not_in_the_state_dict_but_follows_dtype():
    stft = STFT(256, 64)
    assert "window" not in stft.state_dict()
    spec = stft(torch.randn(1000, dtype=torch.float64))
    assert spec.dtype == torch.complex128


def test_bad_settings_fail_clearly():
    with pytest.raises(ValueError, match="center=True"):
        ISTFT(1024, 256, center=False)
    with pytest.raises(ValueError, match="shorter than one frame"):
        STFT(4096, 1024, center=False)(torch.zeros(1000))
    with pytest.raises(ValueError, match="hop_length"):
        STFT(1024, 0)
    with pytest.raises(ValueError, match="frequency bins"):
        ISTFT(1024, 256)(torch.zeros(100, 10, dtype=torch.complex64))


def test_gradients_flow_through_the_round_trip():
    x = torch.randn(1, 2, 8000, requires_grad=True)
    y = ISTFT(512, 128)(STFT(512, 128)(x) * 0.5, length=8000)
    y.pow(2).sum().backward()
    assert torch.allclose(x.grad, 0.5 * x.detach(), atol=1e-4)
