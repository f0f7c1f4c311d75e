"""Plugin discovery: listing without importing, broken plugins, name conflicts, loading by name."""

from __future__ import annotations

import sys

import entrypoints
import pytest

import sepframework
from sepframework import plugins
from sepframework.interfaces import SeparationError


def fake_entry_point(name: str, target: str, dist: str) -> entrypoints.EntryPoint:
    module, _, attr = target.partition(":")
    return entrypoints.EntryPoint(name, module, attr, distro=entrypoints.Distribution(dist, "1.0"))


@pytest.fixture
def installed(monkeypatch):
    """Replace the installed entry points with the given ones for one test."""

    def install(*entry_points: entrypoints.EntryPoint) -> None:
        monkeypatch.setattr(entrypoints, "get_group_all", lambda group, path=None: list(entry_points))
        plugins.refresh()

    yield install
    plugins.refresh()


def test_listing_does_not_import_plugins(installed) -> None:
    installed(fake_entry_point("never", "module_that_does_not_exist_xyz:Model", "sep-never"))
    assert plugins.plugin_names() == ["never"]
    assert "module_that_does_not_exist_xyz" not in sys.modules


def test_broken_plugin_reports_its_error_and_others_still_load(installed, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sep_broken_plugin", None)  # import raises ImportError
    installed(
        fake_entry_point("broken", "sep_broken_plugin:Model", "sep-broken"),
        fake_entry_point("repet-sim", "sepframework.baselines.repet_sim:RepetSim", "sepframework"),
    )
    with pytest.raises(plugins.PluginError, match=r"plugin 'broken' \(sep-broken 1.0\) failed to import"):
        plugins.get_plugin("broken").load()
    assert plugins.get_plugin("repet-sim").load().__name__ == "RepetSim"


def test_entry_point_that_is_not_a_separator_is_rejected(installed) -> None:
    installed(fake_entry_point("odd", "json:dumps", "sep-odd"))
    with pytest.raises(plugins.PluginError, match="does not point to a sepframework.Separator subclass"):
        plugins.get_plugin("odd").load()


def test_two_distributions_claiming_one_name_are_reported(installed) -> None:
    installed(
        fake_entry_point("foo", "a:Model", "sep-foo"),
        fake_entry_point("foo", "b:Model", "sep-foo-fork"),
    )
    assert plugins.conflicts() == {"foo": ["sep-foo 1.0", "sep-foo-fork 1.0"]}
    with pytest.raises(plugins.PluginError, match="claimed by several distributions: sep-foo 1.0 and sep-foo-fork 1.0"):
        plugins.get_plugin("foo")


def test_unknown_model_error_lists_the_models(installed) -> None:
    installed(fake_entry_point("repet-sim", "sepframework.baselines.repet_sim:RepetSim", "sepframework"))
    with pytest.raises(SeparationError, match=r"unknown model 'nope'; available models: .*repet-sim"):
        sepframework.load("nope", device="cpu")


def test_real_installation_registers_the_project_plugins() -> None:
    names = plugins.plugin_names()
    assert {"repet-sim", "unet", "gru"} <= set(names)


def test_load_by_plugin_name_gives_a_working_separator() -> None:
    model = sepframework.load("repet-sim", device="cpu")
    assert model.sources == ("vocals", "accompaniment")
    assert model.sample_rate == 16000
