"""The U-Net plugin: network shapes, patch inference, stereo handling, training loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from sepframework.conformance import SeparatorConformance
from sepframework.interfaces import SeparationError
from sep_unet.model import (UNetSeparator, from_patches, fuse_batch_norm, inference_network, sub_pixel_convolution,
                            to_patches)
from sep_unet.network import UNet
from sep_unet.training import UNetTrainable

SMALL = {"n_fft": 256, "hop_length": 64, "patch_frames": 64}


@pytest.fixture(scope="module")
def network() -> UNet:
    torch.manual_seed(0)
    net = UNet()
    with torch.no_grad():  # non-trivial batch-norm statistics, so fusing them is tested
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.fixture(scope="module")
def separator(network: UNet) -> UNetSeparator:
    return UNetSeparator(network, SMALL)


def test_network_maps_patches_to_masks_in_unit_range(network: UNet) -> None:
    magnitude = torch.rand(3, 1, 128, 64) * 10
    with torch.no_grad():
        mask = network(magnitude)
    assert mask.shape == magnitude.shape
    assert mask.min() >= 0 and mask.max() <= 1 and mask.std() > 0


def test_network_ignores_the_input_level(network: UNet) -> None:
    magnitude = torch.rand(2, 1, 128, 64)
    with torch.no_grad():
        torch.testing.assert_close(network(magnitude), network(magnitude * 7.5), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("channels", [(32, 1), (16, 3)])
def test_the_sub_pixel_convolution_is_the_transposed_convolution(channels: tuple[int, int]) -> None:
    torch.manual_seed(0)
    layer = torch.nn.ConvTranspose2d(*channels, 5, stride=2, padding=2, output_padding=1)
    x = torch.randn(2, channels[0], 9, 6)
    with torch.no_grad():
        torch.testing.assert_close(sub_pixel_convolution(layer)(x), layer(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="stride-2 5x5"):
        sub_pixel_convolution(torch.nn.ConvTranspose2d(4, 1, 3, stride=2, padding=1, output_padding=1))


def test_the_inference_network_matches_the_eval_network(network: UNet) -> None:
    magnitude = torch.rand(3, 1, 128, 64) * 4
    with torch.no_grad():
        torch.testing.assert_close(inference_network(network)(magnitude), network(magnitude), rtol=1e-4, atol=1e-5)


def test_fused_batch_norm_matches_the_eval_network(network: UNet) -> None:
    magnitude = torch.rand(2, 1, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(fuse_batch_norm(network)(magnitude), network(magnitude), rtol=1e-4, atol=1e-5)


def test_patches_round_trip() -> None:
    magnitude = torch.rand(8, 150)
    patches = to_patches(magnitude, 64)
    assert patches.shape == (3, 1, 8, 64)
    assert torch.equal(from_patches(patches, 150), magnitude)
    assert torch.equal(patches[1, 0], magnitude[:, 64:128])
    assert torch.equal(patches[2, 0, :, 22:], torch.zeros(8, 42))  # 150 - 128 = 22 real frames


@pytest.mark.parametrize("length", [1, 63, 64, 65, 4095, 4096, 4097, 10000])
def test_any_length_gives_stems_that_sum_to_the_input(separator: UNetSeparator, length: int) -> None:
    audio = np.random.default_rng(length).standard_normal((2, length)).astype(np.float32) * 0.1
    stems = separator.separate_block(audio)
    assert set(stems) == {"vocals", "accompaniment"}
    for stem in stems.values():
        assert stem.shape == audio.shape and stem.dtype == np.float32
    np.testing.assert_allclose(stems["vocals"] + stems["accompaniment"], audio, atol=1e-6)


def test_output_does_not_depend_on_trailing_silence_or_length(separator: UNetSeparator) -> None:
    audio = np.random.default_rng(0).standard_normal((1, 5000)).astype(np.float32)
    audio[:, 4000:] = 0  # the last frames are silent, so extra silence adds only silent frames
    padded = np.pad(audio, ((0, 0), (0, 3000)))
    short, long = separator.separate_block(audio), separator.separate_block(padded)
    np.testing.assert_allclose(short["vocals"], long["vocals"][:, :5000], atol=1e-5)
    assert np.abs(short["vocals"]).max() > 1e-3


def test_stereo_uses_one_mask_on_both_channels(separator: UNetSeparator) -> None:
    left = np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    stereo = np.stack([left, 0.5 * left])
    stems = separator.separate_block(stereo)
    np.testing.assert_allclose(stems["vocals"][1], 0.5 * stems["vocals"][0], atol=1e-5)
    mono = separator.separate_block(stereo.mean(axis=0, keepdims=True))
    np.testing.assert_allclose(stems["vocals"].mean(axis=0), mono["vocals"][0], atol=1e-5)


def test_load_reads_float16_safetensors(tmp_path, network: UNet) -> None:
    path = tmp_path / "model.safetensors"
    save_file({k: v.half() if v.is_floating_point() else v for k, v in network.state_dict().items()}, str(path))
    loaded = UNetSeparator.load(SMALL, {"model.safetensors": path})
    audio = np.random.default_rng(2).standard_normal((1, 3000)).astype(np.float32)
    np.testing.assert_allclose(loaded.separate_block(audio)["vocals"], UNetSeparator(network, SMALL).separate_block(audio)["vocals"], atol=2e-2)


def test_bad_arguments_and_missing_weights_are_clear_errors(tmp_path) -> None:
    with pytest.raises(SeparationError, match="model.safetensors"):
        UNetSeparator.load({}, None)
    with pytest.raises(SeparationError, match="patch_frames=100 must be a multiple of 64"):
        UNetSeparator.load({"patch_frames": 100}, {"model.safetensors": tmp_path / "x"})
    with pytest.raises(SeparationError, match="unknown model argument"):
        UNetTrainable({"n_ftt": 512})
    bad = tmp_path / "bad.safetensors"
    save_file({"weight": torch.zeros(3)}, str(bad))
    with pytest.raises(SeparationError, match="not unet weights"):
        UNetSeparator.load({}, {"model.safetensors": bad})


@pytest.mark.parametrize("target", ["magnitude", "waveform"])
def test_training_loss_decreases_on_a_fixed_batch(target: str) -> None:
    torch.manual_seed(0)
    trainable = UNetTrainable(SMALL, target=target)
    model = trainable.build_model()
    rng = np.random.default_rng(0)
    t = np.arange(trainable.segment_samples) / trainable.sample_rate
    vocals = np.sin(2 * np.pi * rng.uniform(2000, 4000, (2, 1)) * t) * (rng.random((2, 1)) + 0.2)
    accompaniment = np.sin(2 * np.pi * rng.uniform(100, 400, (2, 1)) * t) * (rng.random((2, 1)) + 0.2)
    targets = torch.from_numpy(np.stack([vocals, accompaniment], axis=1)[:, :, None].astype(np.float32))
    mixture = targets.sum(dim=1)
    assert trainable.spectrogram(mixture).shape == (2, 1, 128, 64)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = trainable.loss(model, mixture, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    if target == "waveform":  # minus an SDR in dB: it must gain a few dB
        assert losses[-1] < losses[0] - 3
    else:
        assert losses[-1] < 0.5 * losses[0]


class TestUNetConformance(SeparatorConformance):
    """The framework's plugin checks; patches see the whole segment, so the model is not local."""

    local = False

    def make_model(self) -> UNetSeparator:
        torch.manual_seed(0)
        return UNetSeparator(UNet().eval())


def test_moving_the_unet_to_a_missing_device_is_a_clear_error(network: UNet) -> None:
    with pytest.raises(SeparationError, match="unknown device 'gpu'"):
        UNetSeparator(network, SMALL).to("gpu")
