"""Write what the program rendered for the hosts (user-data and the files it carries) for review."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from offline.harness import StackRun
from rendering.yaml_text import decode_user_data

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
# Marks a folder as ours, so a rerun may clean it and a mistyped --out never deletes anything else.
MARKER = ".offline-plan"
MARKER_TEXT = "written by `python3 dev.py plan`; files that are not part of the latest plan are deleted\n"


class ArtifactFolderError(Exception):
    pass


def write_artifacts(run: StackRun, out: Path, *, owned: bool = False) -> list[Path]:
    """`<out>/<fleet>/user-data.yaml` per launch template, plus every file its user-data writes.

    Afterwards `out` holds exactly these files: those of removed groups are deleted. Unchanged files are left
    alone: on a rerun, deleting and rewriting thousands of files was most of a large plan's time.
    `owned`: `out` is the plan's own default folder, which it may clean even without a marker.
    """
    check_folder(out, owned=owned)
    files = _artifacts(run, out)
    try:
        _remove_stale(out, keep={*files, out / MARKER})
        for path, text in [*files.items(), (out / MARKER, MARKER_TEXT)]:
            _write(path, text)
    except OSError as error:  # what a folder check cannot foresee: a full disk, a read-only or special file system
        raise ArtifactFolderError(f"--out {out}: cannot write there ({error}); choose another --out") from None
    return list(files)


def check_folder(out: Path, *, owned: bool) -> None:
    """Refuse a folder the plan cannot fill, or one with files it did not write, which `write_artifacts` would
    delete."""
    nearest = next(path for path in (out, *out.parents) if path.exists())  # `out` itself, or where it would go
    if not nearest.is_dir():
        where = "not a folder; give a folder (it is created when missing)"
        if nearest != out:
            where = f"{nearest} is not a folder; choose another --out"
        raise ArtifactFolderError(f"--out {out}: {where}")
    if nearest == out and any(out.iterdir()) and not owned and not (out / MARKER).exists():
        raise ArtifactFolderError(f"{out} is not empty and was not written by the offline plan; choose another --out")


def _artifacts(run: StackRun, out: Path) -> dict[Path, str]:
    files: dict[Path, str] = {}
    for template in run.of_type(LAUNCH_TEMPLATE):
        fleet = out / str(template.inputs["name"])
        text = decode_user_data(template.inputs["userData"])
        files[fleet / "user-data.yaml"] = text
        document = yaml.load(text, Loader=yaml.CSafeLoader) or {}  # libyaml's parser: 10x faster than safe_load
        for entry in document.get("write_files", []):
            files[fleet / "files" / entry["path"].lstrip("/")] = entry.get("content", "")
    return files


def _remove_stale(out: Path, keep: set[Path]) -> None:
    for folder, _, names in os.walk(out, topdown=False):
        for name in names:
            if Path(folder, name) not in keep:
                Path(folder, name).unlink()
        if folder != str(out) and not os.listdir(folder):
            os.rmdir(folder)


def _write(path: Path, text: str) -> None:
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
