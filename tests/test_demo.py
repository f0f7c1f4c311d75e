"""`make run`'s demo: separates the bundled MUSDB18 example offline and scores it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import soundfile as sf


def test_demo_separates_the_bundled_example_offline(tmp_path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "sepframework.demo"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "separated/demo/The Easton Ellises - Falcon 69"
    for source in ("vocals", "accompaniment"):
        info = sf.info(folder / f"{source}.wav")
        assert info.samplerate == 44100 and info.channels == 2 and 5.9 < info.duration < 6.2
        score = re.search(rf"{source}\s+\S.*SDR\s+(-?\d+\.\d) dB", result.stdout)
        assert score, result.stdout
        assert float(score.group(1)) > 0  # better than silence against the true stem
