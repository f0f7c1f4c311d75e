"""The project's own ``registry/index.json``: every shipped model is complete, verified and
described by its card, and ``sep run`` uses ``unet`` when no model is named."""

from __future__ import annotations

import pytest

from sepframework.model_files import CARD_FILE, card_metadata, read_config
from sepframework import registry

SHIPPED = ("unet", "gru", "gru-stream")


def test_unet_is_the_default_model() -> None:
    assert registry.default_model_name() == "unet"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_entry_is_bundled_verified_and_matches_its_card(name: str) -> None:
    entry = registry.index()[name]
    files = registry.fetch(entry)  # bundled: hashes checked, no network
    assert set(files) == {"config.json", "model.safetensors"}
    assert registry.availability(entry) == "bundled"
    config = read_config(files)
    assert config["plugin"] == entry.plugin
    card = card_metadata(registry.bundled_folder(entry) / CARD_FILE)
    assert entry.metrics == card["metrics"] and entry.license == card["license"]
    assert entry.metrics["mir1k validation"]["vocals GNSDR"] > 5.0
