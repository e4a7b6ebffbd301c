"""Write what the program rendered for the hosts (user-data and the files it carries) for review."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from offline.harness import StackRun
from rendering.yaml_text import decode_user_data

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
# Marks a folder as ours, so a rerun may empty it and a mistyped --out never deletes anything else.
MARKER = ".offline-plan"


class ArtifactFolderError(Exception):
    pass


def write_artifacts(run: StackRun, out: Path, *, owned: bool = False) -> list[Path]:
    """`<out>/<fleet>/user-data.yaml` per launch template, plus every file its user-data writes.

    `owned`: `out` is the plan's own default folder, which it may empty even without a marker.
    """
    _claim(out, owned)
    written: list[Path] = []
    for template in run.of_type(LAUNCH_TEMPLATE):
        fleet = out / str(template.inputs["name"])
        text = decode_user_data(template.inputs["userData"])
        written.append(_write(fleet / "user-data.yaml", text))
        document = yaml.load(text, Loader=yaml.CSafeLoader) or {}  # libyaml's parser: 10x faster
        for entry in document.get("write_files", []):
            written.append(_write(fleet / "files" / entry["path"].lstrip("/"), entry.get("content", "")))
    return written


def check_folder(out: Path, *, owned: bool) -> None:
    """Refuse a folder with files the plan did not write: `_claim` would delete them."""
    if out.exists() and any(out.iterdir()) and not owned and not (out / MARKER).exists():
        raise ArtifactFolderError(f"{out} is not empty and was not written by the offline plan; choose another --out")


def _claim(out: Path, owned: bool) -> None:
    """Empty `out` if an earlier plan wrote it, so files of removed groups do not linger."""
    check_folder(out, owned=owned)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by `python3 dev.py plan`; emptied on every run\n", encoding="utf-8")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
