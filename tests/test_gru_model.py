"""The GRU separator: joint masks, causality, stereo handling, chunked inference and loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import sepframework
from sepframework.model_files import sha256_of
from sepframework.conformance import SeparatorConformance
from sepframework.interfaces import SeparationError
from sepframework.streaming import end_padded
from sepframework.training import export_model
from sepframework.training.warm_start import initialise
from sep_gru.model import GRUSeparator
from sep_gru.network import GRUConfig, MaskGRU
from sep_gru.trainer import GRUTrainable

SMALL = {"hidden_size": 16, "num_layers": 2}


def small_separator(bidirectional: bool = False, seed: int = 0, chunk_frames: int | None = None) -> GRUSeparator:
    """A randomly initialised small GRU separator (deterministic for ``seed``)."""
    torch.manual_seed(seed)
    return GRUSeparator(GRUConfig(**SMALL, bidirectional=bidirectional), chunk_frames=chunk_frames)


def write_registry(folder: Path, models: dict[str, GRUSeparator]) -> Path:
    """A registry folder with ``models`` exported as the training library does (float16)."""
    entries = {}
    for name, separator in models.items():
        trainable = GRUTrainable(separator.config.to_args())
        files = export_model(trainable, separator.network, "gru", folder / name)
        entries[name] = {
            "plugin": "gru", "repo_id": f"test/{name}", "revision": "0" * 40, "sample_rate": 16000,
            "sources": ["vocals", "accompaniment"],
            "files": {filename: sha256_of(path) for filename, path in files.items()},
        }
    (folder / "index.json").write_text(json.dumps({"models": entries}))
    return folder


def install_test_registry(folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, GRUSeparator]:
    """``test-stream`` (causal) and ``test-offline`` (bidirectional) models in a registry at ``folder``."""
    models = {"test-stream": small_separator(seed=1), "test-offline": small_separator(bidirectional=True, seed=2)}
    monkeypatch.setenv("SEP_REGISTRY", str(write_registry(folder, models)))
    return models


@pytest.fixture
def gru_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, GRUSeparator]:
    return install_test_registry(tmp_path / "registry", monkeypatch)


def noise(channels: int, length: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal((channels, length))).astype(np.float32)


def test_masks_are_probabilities_over_sources() -> None:
    network = small_separator().network
    masks, state = network(torch.rand(3, 20, GRUConfig().n_bins) * 10)
    assert masks.shape == (3, 20, 2, GRUConfig().n_bins)
    assert state.shape == (2, 3, SMALL["hidden_size"])
    assert torch.all(masks >= 0) and torch.all(masks <= 1)
    torch.testing.assert_close(masks.sum(dim=2), torch.ones(3, 20, GRUConfig().n_bins))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_first_mask_alone_is_the_softmax_masks_first(bidirectional: bool) -> None:
    network = small_separator(bidirectional, seed=4).network
    magnitude = torch.rand(3, 40, GRUConfig().n_bins) * 10
    state = torch.rand(2 * (1 + bidirectional), 3, SMALL["hidden_size"])
    with torch.inference_mode():
        masks, full_state = network(magnitude, state)
        mask, first_state = network.first_mask(magnitude, state)
        from_layer, _ = network.first_mask(magnitude, state, network.first_mask_layer())
    torch.testing.assert_close(mask, masks[:, :, 0], atol=1e-6, rtol=0)
    torch.testing.assert_close(from_layer, mask, atol=0, rtol=0)
    torch.testing.assert_close(first_state, full_state, atol=0, rtol=0)


def test_separation_masks_the_mixture_with_the_networks_vocals_mask() -> None:
    separator = small_separator(bidirectional=True, seed=5)
    audio = noise(2, 9000, seed=6)
    spec = separator.stft.forward(end_padded(audio, separator.stft))
    magnitude = torch.from_numpy(np.abs(spec).mean(axis=0).T.copy())
    with torch.inference_mode():
        vocals_mask = separator.network(magnitude[None])[0][0, :, 0].T.numpy()  # (bins, frames) of forward()
    expected = separator.stft.inverse(spec * vocals_mask, audio.shape[1])
    stems = separator.separate_block(audio)
    np.testing.assert_allclose(stems["vocals"], expected, atol=1e-5)
    np.testing.assert_allclose(stems["accompaniment"], audio - expected, atol=1e-5)


def test_float64_audio_gives_the_float32_stems_of_its_float32_copy() -> None:
    separator = small_separator()
    audio = noise(2, 9000, seed=7).astype(np.float64)
    stems, expected = separator.separate_block(audio), separator.separate_block(audio.astype(np.float32))
    for name in separator.sources:
        assert stems[name].dtype == np.float32
        np.testing.assert_array_equal(stems[name], expected[name])


@pytest.mark.parametrize("bidirectional", [False, True])
def test_only_the_bidirectional_network_sees_the_future(bidirectional: bool) -> None:
    network = small_separator(bidirectional).network
    magnitude = torch.rand(1, 30, GRUConfig().n_bins)
    changed = magnitude.clone()
    changed[:, 20:] *= 5
    with torch.no_grad():
        past, future = network(magnitude)[0], network(changed)[0]
    past_differs = not torch.allclose(past[:, :20], future[:, :20])
    assert past_differs == bidirectional
    assert not torch.allclose(past[:, 20:], future[:, 20:])


def test_channels_are_masked_apart() -> None:
    separator = small_separator()
    left = noise(1, 9000, seed=1)
    stems = separator.separate_block(np.concatenate([left, np.zeros_like(left)]))
    for name in separator.sources:
        assert np.abs(stems[name][1]).max() < 1e-6  # a silent channel stays silent
        assert np.abs(stems[name][0]).max() > 1e-3


def test_both_channels_get_the_masks_of_the_channel_mean() -> None:
    separator = small_separator()
    mono = noise(1, 7000, seed=2)
    single = separator.separate_block(mono)
    double = separator.separate_block(np.concatenate([mono, mono]))
    for name in separator.sources:
        np.testing.assert_allclose(double[name], np.concatenate([single[name]] * 2), atol=1e-6)


def test_chunked_batch_inference_covers_every_frame_in_order() -> None:
    # With zero GRU weights the recurrent output is always zero: masks depend on each
    # frame alone, so chunking must give exactly the whole-sequence masks.
    for bidirectional in (False, True):
        whole = small_separator(bidirectional)
        with torch.no_grad():
            for name, parameter in whole.network.gru.named_parameters():
                parameter.zero_()
        chunked = GRUSeparator(whole.config, chunk_frames=8, context_frames=3, network=whole.network)
        magnitude = np.random.default_rng(0).random((61, whole.config.n_bins), dtype=np.float32)
        np.testing.assert_allclose(chunked.vocal_mask(magnitude), whole.vocal_mask(magnitude), atol=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_each_chunk_is_masked_as_its_own_silence_padded_window(bidirectional: bool) -> None:
    # The encoder and decoder run once per frame and only the GRU on the windows: the
    # result must be that of running the network on each window of frames (context,
    # chunk, and for a bidirectional network context again), zero frames beyond the ends.
    separator = small_separator(bidirectional, seed=5)
    chunked = GRUSeparator(separator.config, chunk_frames=8, context_frames=3, network=separator.network)
    frames, bins = 61, separator.config.n_bins
    magnitude = np.random.default_rng(6).random((frames, bins), dtype=np.float32)
    right = 3 if bidirectional else 0
    padded = np.concatenate([np.zeros((3, bins), np.float32), magnitude, np.zeros((8 + right, bins), np.float32)])
    with torch.inference_mode():
        expected = np.concatenate([
            separator.network.first_mask(torch.from_numpy(padded[start : start + 3 + 8 + right])[None])[0][0, 3:11].numpy()
            for start in range(0, frames, 8)
        ])[:frames]
    np.testing.assert_allclose(chunked.vocal_mask(magnitude), expected.T, atol=1e-6)


def test_chunked_inference_is_close_to_whole_sequence_inference() -> None:
    whole = small_separator(bidirectional=True)
    chunked = GRUSeparator(whole.config, chunk_frames=64, context_frames=16, network=whole.network)
    audio = noise(2, 16000 * 6, seed=3)
    a, b = whole.separate_block(audio)["vocals"], chunked.separate_block(audio)["vocals"]
    assert np.abs(a - b).max() < 0.05 * np.abs(a).max()


def test_loading_through_the_registry_keeps_the_float16_weights(gru_registry: dict[str, GRUSeparator]) -> None:
    model = sepframework.load("test-stream", device="cpu")
    assert isinstance(model, GRUSeparator) and model.causal
    assert not sepframework.load("test-offline", device="cpu").causal
    audio = noise(2, 8000, seed=4)
    expected = gru_registry["test-stream"].separate_block(audio)["vocals"]
    np.testing.assert_allclose(model.separate_block(audio)["vocals"], expected, atol=2e-3)


def test_user_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(SeparationError, match="needs trained weights"):
        GRUSeparator.load({}, None)
    with pytest.raises(SeparationError, match="unknown GRU config key"):
        GRUConfig.from_args({"hidden": 3})
    files = export_model(GRUTrainable(SMALL), MaskGRU(GRUConfig(**SMALL)), "gru", tmp_path)
    with pytest.raises(SeparationError, match=r"does not match the GRU config: size mismatch for encoder\.0\.weight: "
                       r"copying a param with shape torch.Size\(\[16, 513\]\) .* \(and \d+ more\)$"):
        GRUSeparator.load({"hidden_size": 32}, files)
    with pytest.raises(SeparationError, match="cannot stream"):
        small_separator(bidirectional=True).frame_processor()


def test_training_can_start_from_a_registry_model(gru_registry: dict[str, GRUSeparator]) -> None:
    shipped = gru_registry["test-offline"].network
    trainable = GRUTrainable(shipped.config.to_args())
    network = trainable.build_model()
    initialise(network, trainable, "test-offline")  # `sep train gru --init test-offline ...`
    for name, tensor in network.state_dict().items():
        torch.testing.assert_close(tensor, shipped.state_dict()[name].half().float())
    with pytest.raises(SeparationError, match="model arguments differ from this run's in bidirectional"):
        initialise(network, trainable, "test-stream")


def test_the_waveform_target_scores_what_the_separator_outputs() -> None:
    """Training with ``--target waveform`` optimises the SDR of the separator's own stems."""
    separator = small_separator(bidirectional=True, seed=3)
    trainable = GRUTrainable(separator.config.to_args(), target="waveform")
    rng = np.random.default_rng(4)
    t = np.arange(trainable.segment_samples) / trainable.sample_rate
    vocals = np.sin(2 * np.pi * rng.uniform(300, 900, (2, 1)) * t) * rng.uniform(0.1, 0.5, (2, 1))
    accompaniment = 0.1 * rng.standard_normal((2, t.size))
    targets = torch.from_numpy(np.stack([vocals, accompaniment], axis=1)[:, :, None].astype(np.float32))
    mixture = targets.sum(dim=1)
    with torch.no_grad():
        loss = float(trainable.loss(separator.network, mixture, targets))
    tau = 10 ** (-30 / 10)
    sdrs = []
    for example in range(2):
        stems = separator.separate_block(mixture[example].numpy())
        floor = tau * float((mixture[example] ** 2).sum())
        for s, name in enumerate(("vocals", "accompaniment")):
            reference = targets[example, s, 0].numpy().astype(np.float64)
            error = ((reference - stems[name][0]) ** 2).sum()
            energy = (reference ** 2).sum()
            sdrs.append(10 * np.log10((energy + floor) / (error + tau * energy + floor)))
    assert -loss == pytest.approx(np.mean(sdrs), abs=0.01)


class TestGRUStreamConformance(SeparatorConformance):
    """The framework's plugin checks on the causal model; a GRU's memory reaches past any
    context, so chunked output is only checked for shape and finiteness."""

    local = False

    def make_model(self) -> GRUSeparator:
        return small_separator(bidirectional=False, chunk_frames=128)


class TestBidirectionalGRUConformance(TestGRUStreamConformance):
    def make_model(self) -> GRUSeparator:
        return small_separator(bidirectional=True, chunk_frames=128)


def test_moving_the_gru_to_a_missing_device_is_a_clear_error() -> None:
    with pytest.raises(SeparationError, match="unknown device 'gpu'"):
        small_separator().to("gpu")
