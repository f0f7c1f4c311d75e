"""``sep eval`` on tiny generated datasets: MIR-1K clips, a folder of stems, MUSDB18 ``.stem.mp4``."""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf

import sepframework
from sepframework.baselines.repet_sim import RepetSim
from sepframework.cli import main
from sepframework.datasets import detect_layout, load_tracks
from sepframework.evaluation import LengthWeightedMeans, MedianOverTracks, get_evaluator
from sepframework.evaluation.scoring import score_dataset
from sepframework.interfaces import SeparationError, Separator
from tests.test_bench_cli import write_mir1k

RATE = 16000


class Fake(Separator):
    """Gives 60 % of the mixture to the vocals and 40 % to the accompaniment (plus a little
    noise, the artifacts); counts its calls.

    ``interrupt_at``/``fail_at``: the call (counted from 1) that raises KeyboardInterrupt
    or ``failure``.
    """

    sample_rate = RATE
    sources = ("vocals", "accompaniment")
    calls = 0
    interrupt_at: int | None = None
    fail_at: int | None = None
    failure: BaseException = SeparationError("the fake model failed")

    @classmethod
    def load(cls, args: Mapping[str, Any], weights: Mapping[str, Any] | None, device: str = "cpu") -> Fake:
        return cls()

    def separate_block(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        type(self).calls += 1
        if type(self).calls == self.interrupt_at:
            raise KeyboardInterrupt
        if type(self).calls == self.fail_at:
            raise self.failure
        hiss = 0.01 * np.random.default_rng(audio.shape[1]).standard_normal(audio.shape).astype(np.float32)
        return {"vocals": 0.6 * audio + hiss, "accompaniment": 0.4 * audio - hiss}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[Fake]:
    """``--model fake`` loads :class:`Fake` (fresh counters); other names load as usual."""
    load = sepframework.load
    monkeypatch.setattr(sepframework, "load", lambda name=None, device="auto": Fake() if name == "fake" else load(name, device))
    monkeypatch.setattr(Fake, "calls", 0)
    return Fake


def sep_eval(*args: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run ``sep eval ARGS`` in this process as the console script does: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["sep", "eval", *args])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def noise(channels: int, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((channels, int(seconds * RATE)))).astype(np.float32)


def write_stems(folder: Path, tracks: int = 2) -> Path:
    """DSD100 / MUSDB18-HQ layout: <track>/{vocals,drums,bass,other}.wav."""
    for index in range(tracks):
        for seed, stem in enumerate(("vocals", "drums", "bass", "other")):
            path = folder / f"Song {index}" / f"{stem}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, noise(2, 1.0, 10 * index + seed).T, RATE, subtype="FLOAT")
    return folder


def write_stem_mp4(path: Path, stems: list[np.ndarray], rate: int = RATE) -> None:
    """A NI stem file: audio streams mixture, drums, bass, other, vocals (``stems`` are the last four), ALAC."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        streams = [container.add_stream("alac", rate=rate, layout="stereo") for _ in range(1 + len(stems))]
        for stream, audio in zip(streams, [np.sum(stems, axis=0), *stems], strict=True):
            pcm = np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)
            for start in range(0, pcm.shape[1], 4096):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, start : start + 4096]), format="s16p",
                                                   layout="stereo")
                frame.sample_rate, frame.pts = rate, start
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))


def results(folder: Path) -> tuple[dict, list[dict]]:
    """``scores.json`` and the rows of ``scores.csv``; checks that they agree with each other."""
    document = json.loads((folder / "scores.json").read_text())
    with open(folder / "scores.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    expected = [("track", t["track"], source, metric, value)
                for t in document["tracks"] for source, metrics in t["scores"].items() for metric, value in metrics.items()]
    expected += [("aggregate", statistic, source, metric, value)
                 for statistic, scores in document["aggregates"].items()
                 for source, metrics in scores.items() for metric, value in metrics.items()]
    assert [(r["row"], r["name"], r["source"], r["metric"]) for r in rows] == [e[:4] for e in expected]
    for row, (*_, value) in zip(rows, expected, strict=True):  # NaN and infinity: null in JSON, empty in CSV
        assert (float(row["value"]) if row["value"] else None) == pytest.approx(value, rel=1e-12)
    return document, rows


def test_mir1k_scores_are_the_evaluators(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    data = write_mir1k(tmp_path / "mir", clips=3)
    monkeypatch.chdir(tmp_path)
    code, out, err = sep_eval("--model", "repet-sim", "--limit", "2", "mir", monkeypatch=monkeypatch, capsys=capsys)
    assert (code, err) == (0, "")  # no progress bar nor message when stderr is not a terminal
    document, _ = results(tmp_path / "eval-results" / "repet-sim-mir-gnsdr")
    assert (document["model"], document["metric"], document["layout"]) == ("repet-sim", "gnsdr", "mir1k")
    assert document["dataset"] == str(data.resolve()) and document["failed"] == []

    evaluator, model = get_evaluator("gnsdr"), RepetSim()
    tracks = load_tracks(data)[:2]
    assert [t["track"] for t in document["tracks"]] == [track.name for track in tracks]
    for saved, track in zip(document["tracks"], tracks, strict=True):
        estimates = model.separate(track.mixture, track.sample_rate)
        assert saved["scores"] == evaluator.evaluate(track.sources, estimates, track.sample_rate)
        assert saved["seconds"] == pytest.approx(3.0)
    aggregates = document["aggregates"]["length-weighted mean"]
    assert aggregates == score_dataset(model, data, "gnsdr", limit=2)["scores"]  # the loop sep bench uses
    assert set(aggregates["vocals"]) == {"GNSDR", "GSIR", "GSAR", "GSDR"}
    assert "singer_0" in out and "singer_2" not in out and "length-weighted mean over 2 track(s)" in out
    assert f"{aggregates['vocals']['GNSDR']:.2f}" in out


def test_museval_scores_agree_with_the_fast_implementation(tmp_path: Path, monkeypatch, capsys, fake) -> None:
    data = write_stems(tmp_path / "dsd", tracks=2)
    fast, reference = tmp_path / "fast", tmp_path / "museval"
    for out, extra in ((fast, []), (reference, ["--museval"])):
        code, _, err = sep_eval("--model", "fake", *extra, "-o", str(out), str(data), monkeypatch=monkeypatch, capsys=capsys)
        assert (code, err) == (0, "")
    fast_doc, museval_doc = results(fast)[0], results(reference)[0]
    assert (fast_doc["implementation"], museval_doc["implementation"]) == ("sepframework", "museval")
    assert "--museval" in museval_doc["command"] and "--museval" not in fast_doc["command"]
    for fast_track, museval_track in zip(fast_doc["tracks"], museval_doc["tracks"], strict=True):
        for source, metrics in fast_track["scores"].items():
            for metric, value in metrics.items():
                assert museval_track["scores"][source][metric] == pytest.approx(value, abs=0.01), (source, metric)
    # scores of one implementation are never resumed into a run of the other
    code, _, err = sep_eval("--model", "fake", "-o", str(fast), "--museval", str(data), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and "--restart" in err


def test_folder_of_stems_defaults_to_v4_median(tmp_path: Path, monkeypatch, capsys, fake) -> None:
    data = write_stems(tmp_path / "dsd", tracks=3)
    code, out, err = sep_eval("--model", "fake", "-o", str(tmp_path / "out"), str(data),
                              monkeypatch=monkeypatch, capsys=capsys)
    assert (code, err) == (0, "")
    document, _ = results(tmp_path / "out")
    assert (document["metric"], document["layout"]) == ("v4", "stems")
    assert [t["track"] for t in document["tracks"]] == ["Song 0", "Song 1", "Song 2"]
    medians = MedianOverTracks()
    for track in document["tracks"]:
        assert set(track["scores"]["vocals"]) == {"SDR", "ISR", "SIR", "SAR"}
        medians.add(RATE, track["scores"])
    assert document["aggregates"] == {"median": medians.result()}
    assert "median over 3 track(s)" in out


def test_musdb_stem_mp4(tmp_path: Path, monkeypatch, capsys, fake) -> None:
    stems = {name: [noise(2, 1.0, 10 * index + seed) for seed in range(4)] for index, name in enumerate(("A", "B"))}
    for name, parts in stems.items():
        write_stem_mp4(tmp_path / "musdb" / "test" / f"{name}.stem.mp4", parts)
    assert detect_layout(tmp_path / "musdb") == "stem.mp4"
    tracks = load_tracks(tmp_path / "musdb")
    assert [track.name for track in tracks] == ["test/A", "test/B"]
    for track, parts in zip(tracks, stems.values(), strict=True):  # drums, bass, other, vocals; 16-bit ALAC
        np.testing.assert_allclose(track.sources["vocals"], parts[3], atol=1e-4)
        np.testing.assert_allclose(track.sources["accompaniment"], sum(parts[:3]), atol=3e-4)

    code, out, err = sep_eval("--model", "fake", "--metric", "sisdr", "-o", str(tmp_path / "out"),
                              str(tmp_path / "musdb"), monkeypatch=monkeypatch, capsys=capsys)
    assert (code, err) == (0, "")
    document, _ = results(tmp_path / "out")
    evaluator = get_evaluator("sisdr")
    for saved, track in zip(document["tracks"], tracks, strict=True):
        assert saved["scores"] == evaluator.evaluate(track.sources, Fake().separate(track.mixture, RATE), RATE)
    assert set(document["aggregates"]) == {"mean", "median"}
    assert "mean over 2 track(s)" in out and "median over 2 track(s)" in out


def test_a_stem_mp4_without_the_five_streams_is_a_clear_error(tmp_path: Path) -> None:
    write_stem_mp4(tmp_path / "short.stem.mp4", [noise(2, 0.5, 0)])  # mixture and one stem only
    with pytest.raises(SeparationError, match=r"short\.stem\.mp4: has 2 audio stream\(s\), so no audio stream 4"):
        load_tracks(tmp_path)


def test_an_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path: Path, monkeypatch, capsys, fake) -> None:
    data = write_mir1k(tmp_path / "mir", clips=4, seconds=1.0)
    whole = tmp_path / "whole"
    assert sep_eval("--model", "fake", "-o", str(whole), str(data), monkeypatch=monkeypatch, capsys=capsys)[0] == 0

    monkeypatch.setattr(Fake, "calls", 0)
    monkeypatch.setattr(Fake, "interrupt_at", 3)
    parts = tmp_path / "parts"
    code, _, err = sep_eval("--model", "fake", "-o", str(parts), str(data), monkeypatch=monkeypatch, capsys=capsys)
    assert (code, err.strip()) == (130, "interrupted")
    assert not (parts / "scores.json").exists()
    with open(parts / "tracks.jsonl", "a") as file:
        file.write('{"track": "singer_2", "len')  # the line a kill cut short

    monkeypatch.setattr(Fake, "interrupt_at", None)
    monkeypatch.setattr(Fake, "calls", 0)
    code, _, err = sep_eval("--model", "fake", "-o", str(parts), str(data), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and err == f"resuming: 2 of 4 tracks already scored ({parts / 'tracks.jsonl'})\n"
    assert fake.calls == 2  # only the two tracks left
    resumed, _ = results(parts)
    expected, _ = results(whole)
    assert (resumed["tracks"], resumed["aggregates"]) == (expected["tracks"], expected["aggregates"])

    monkeypatch.setattr(Fake, "calls", 0)  # everything scored: nothing separated again, same report
    code, out, err = sep_eval("-q", "--model", "fake", "-o", str(parts), str(data), monkeypatch=monkeypatch, capsys=capsys)
    assert (code, out, err) == (0, "", "")
    assert fake.calls == 0 and results(parts)[0]["aggregates"] == expected["aggregates"]


def test_other_settings_need_restart_or_another_out(tmp_path: Path, monkeypatch, capsys, fake) -> None:
    data = write_mir1k(tmp_path / "mir", clips=2, seconds=1.0)
    out = str(tmp_path / "out")
    assert sep_eval("--model", "fake", "-o", out, str(data), monkeypatch=monkeypatch, capsys=capsys)[0] == 0
    code, _, err = sep_eval("--model", "fake", "--metric", "sisdr", "-o", out, str(data),
                            monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and len(err.splitlines()) == 1
    assert "holds scores of another run (metric: saved 'gnsdr', now 'sisdr')" in err
    assert "use --restart to score again from scratch, or another --out" in err

    monkeypatch.setattr(Fake, "calls", 0)
    code, _, err = sep_eval("--model", "fake", "--metric", "sisdr", "--restart", "-o", out, str(data),
                            monkeypatch=monkeypatch, capsys=capsys)
    assert (code, err, fake.calls) == (0, "", 2)
    assert results(Path(out))[0]["metric"] == "sisdr"


@pytest.mark.parametrize(("failure", "message"), [
    (SeparationError("the fake model failed"), "the fake model failed"),
    (ValueError("a bug in the model"), "ValueError: a bug in the model"),  # a plugin's fault is one line too
    (SystemExit("the model gave up"), "SystemExit: the model gave up"),
])
def test_a_failing_track_is_reported_and_the_others_scored(
    tmp_path: Path, monkeypatch, capsys, fake, failure: BaseException, message: str
) -> None:
    data = write_mir1k(tmp_path / "mir", clips=2, seconds=1.0)
    (data / "broken.flac").write_bytes(b"not audio at all")
    monkeypatch.setattr(Fake, "fail_at", 2)  # the second readable track fails to separate
    monkeypatch.setattr(Fake, "failure", failure)
    out = tmp_path / "out"
    code, stdout, err = sep_eval("--model", "fake", "-o", str(out), str(data), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1
    lines = err.splitlines()
    assert lines[0].startswith(f"error: track broken: {data / 'broken.flac'}: ")
    assert lines[1:] == [f"error: track singer_1: {message}", "2 of 3 track(s) failed"]
    document, _ = results(out)
    assert [t["track"] for t in document["tracks"]] == ["singer_0"]
    assert [f["track"] for f in document["failed"]] == ["broken", "singer_1"]
    assert "singer_0" in stdout

    monkeypatch.setattr(Fake, "fail_at", None)  # failed tracks are tried again
    code, _, err = sep_eval("--model", "fake", "-o", str(out), str(data), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and err.splitlines()[0] == f"resuming: 1 of 3 tracks already scored ({out / 'tracks.jsonl'})"
    assert [t["track"] for t in results(out)[0]["tracks"]] == ["singer_0", "singer_1"]


def test_clips_of_one_name_in_two_subfolders_are_two_tracks(tmp_path: Path, monkeypatch, capsys, fake) -> None:
    data = tmp_path / "mir"
    write_mir1k(data / "a", clips=1, seconds=1.0)
    write_mir1k(data / "b", clips=1, seconds=1.5)  # another singer_0.flac
    out = tmp_path / "out"
    code, stdout, err = sep_eval("--model", "fake", "-o", str(out), str(data), monkeypatch=monkeypatch, capsys=capsys)
    assert (code, err) == (0, "")
    document, _ = results(out)
    evaluator = get_evaluator("gnsdr")
    tracks = load_tracks(data)
    assert [t["track"] for t in document["tracks"]] == ["a/singer_0", "b/singer_0"]
    for saved, track in zip(document["tracks"], tracks, strict=True):
        assert saved["scores"] == evaluator.evaluate(track.sources, Fake().separate(track.mixture, RATE), RATE)
    assert document["tracks"][0]["scores"] != document["tracks"][1]["scores"]
    assert "a/singer_0" in stdout and "b/singer_0" in stdout

    monkeypatch.setattr(Fake, "calls", 0)  # resuming goes by the new names
    code, _, err = sep_eval("--model", "fake", "-o", str(out), str(data), monkeypatch=monkeypatch, capsys=capsys)
    assert (code, err, fake.calls) == (0, f"resuming: 2 of 2 tracks already scored ({out / 'tracks.jsonl'})\n", 0)

    (data / "b" / "singer_0.flac").write_bytes(b"not audio at all")  # the failed track counts nowhere
    code, _, err = sep_eval("--model", "fake", "-o", str(tmp_path / "again"), str(data),
                            monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and err.splitlines()[0].startswith("error: track b/singer_0: ")
    document, _ = results(tmp_path / "again")
    assert [t["track"] for t in document["tracks"]] == ["a/singer_0"]
    assert [f["track"] for f in document["failed"]] == ["b/singer_0"]
    only_a = LengthWeightedMeans()
    only_a.add(RATE, document["tracks"][0]["scores"])
    assert document["aggregates"]["length-weighted mean"] == only_a.result()


def test_when_no_track_is_scored_no_report_is_written(tmp_path: Path, monkeypatch, capsys, fake) -> None:
    data = write_mir1k(tmp_path / "mir", clips=1, seconds=1.0)
    out = tmp_path / "out"
    monkeypatch.setattr(Fake, "fail_at", 1)
    code, stdout, err = sep_eval("--model", "fake", "-o", str(out), str(data), monkeypatch=monkeypatch, capsys=capsys)
    assert (code, stdout) == (1, "")
    assert err.splitlines() == ["error: track singer_0: the fake model failed",
                                "error: no track could be scored (1 failed); no report written"]
    assert not out.exists()

    monkeypatch.setattr(Fake, "fail_at", None)
    assert sep_eval("--model", "fake", "-o", str(out), str(data), monkeypatch=monkeypatch, capsys=capsys)[0] == 0
    saved = {path.name: path.read_bytes() for path in out.iterdir()}
    monkeypatch.setattr(Fake, "calls", 0)
    monkeypatch.setattr(Fake, "fail_at", 1)  # a --restart that scores nothing keeps the earlier results
    code, _, err = sep_eval("--model", "fake", "--restart", "-o", str(out), str(data),
                            monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and err.endswith("error: no track could be scored (1 failed); no report written\n")
    assert {path.name: path.read_bytes() for path in out.iterdir()} == saved


@pytest.mark.parametrize(("args", "message"), [
    (["missing"], "error: dataset folder missing does not exist"),
    (["mir/singer_0.flac"], "error: mir/singer_0.flac is a file, not a dataset folder"),
    (["twice"], "error: twice/singer_0.flac and twice/singer_0.wav are both track singer_0: keep one of them"),
    (["empty"], "error: empty is neither a MIR-1K folder"),
    (["--model", "nope", "mir"], "error: unknown model 'nope'; available models: "),
    (["--metric", "pesq", "mir"], "error: Invalid value for '--metric': unknown metric 'pesq'; available: v4, gnsdr, "
                                  "sisdr (see `sep eval --help`)"),
])
def test_user_mistakes_are_one_line_errors(tmp_path: Path, monkeypatch, capsys, args: list[str], message: str) -> None:
    write_mir1k(tmp_path / "mir", clips=1, seconds=1.0)
    (tmp_path / "empty").mkdir()
    (tmp_path / "twice").mkdir()
    for suffix in (".flac", ".wav"):  # one clip in two formats
        (tmp_path / "twice" / f"singer_0{suffix}").write_bytes((tmp_path / "mir" / "singer_0.flac").read_bytes())
    monkeypatch.chdir(tmp_path)
    code, out, err = sep_eval(*args, monkeypatch=monkeypatch, capsys=capsys)
    assert code == (2 if "--metric" in args else 1) and out == ""  # a malformed command line exits 2
    assert len(err.splitlines()) == 1 and err.startswith(message), err
    assert not (tmp_path / "eval-results").exists()


@pytest.mark.needs_mir1k
def test_real_mir1k_clip(mir1k: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    code, _, err = sep_eval("--model", "repet-sim", "--limit", "1", "-o", str(tmp_path), str(mir1k),
                            monkeypatch=monkeypatch, capsys=capsys)
    assert (code, err) == (0, "")
    document, _ = results(tmp_path)
    assert document["metric"] == "gnsdr" and len(document["tracks"]) == 1
    assert all(math.isfinite(value) for value in document["aggregates"]["length-weighted mean"]["vocals"].values())


def test_scores_of_a_model_folder_are_not_resumed_after_its_weights_change(tmp_path: Path, monkeypatch, capsys) -> None:
    import shutil

    shipped = Path(__file__).resolve().parents[1] / "registry/gru-stream"
    folder = tmp_path / "runs/gru"
    folder.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(shipped / name, folder / name)
    data = write_mir1k(tmp_path / "mir", clips=1, seconds=1.0)
    out = str(tmp_path / "out")
    assert sep_eval("-m", str(folder), "-o", out, str(data), monkeypatch=monkeypatch, capsys=capsys)[0] == 0
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-2] + b"  ")  # retrained: other weights, same name
    code, _, err = sep_eval("-m", str(folder), "-o", out, str(data), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and "holds scores of another run (weights: saved {" in err, err


def test_the_default_results_folder_names_a_model_folder_by_its_name_however_it_is_written(tmp_path, monkeypatch) -> None:
    from sepframework.evaluation.cli import default_out

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs/gru").mkdir(parents=True)
    (tmp_path / "data").mkdir()
    outs = {default_out(model, Path("data"), "gnsdr") for model in ("runs/gru", "./runs/gru/", str(tmp_path / "runs/gru"))}
    assert outs == {Path("eval-results/gru-data-gnsdr")}
    assert default_out("hf://org/repo@main", Path("data"), "gnsdr") == Path("eval-results/hf_org_repo_main-data-gnsdr")


def test_an_out_folder_that_cannot_be_made_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    data = write_mir1k(tmp_path / "mir", clips=1)
    (tmp_path / "file").write_text("not a folder")
    code, _, err = sep_eval("--model", "repet-sim", "-o", str(tmp_path / "file" / "sub"), str(data),
                            monkeypatch=monkeypatch, capsys=capsys)
    assert (code, err) == (1, f"error: output folder {tmp_path / 'file' / 'sub'} cannot be created (Not a directory)\n")
