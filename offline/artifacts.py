"""Write what the program rendered for the hosts (user-data and the files it carries) for review."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import yaml

from offline.harness import StackRun

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def write_artifacts(run: StackRun, out: Path) -> list[Path]:
    """`<out>/<fleet>/user-data.yaml` per launch template, plus every file its user-data writes."""
    if out.exists():
        shutil.rmtree(out)
    written: list[Path] = []
    for template in run.of_type(LAUNCH_TEMPLATE):
        fleet = out / str(template.inputs["name"])
        text = base64.b64decode(template.inputs["userData"]).decode("utf-8")
        written.append(_write(fleet / "user-data.yaml", text))
        document = yaml.safe_load(text) or {}
        for entry in document.get("write_files", []):
            written.append(_write(fleet / "files" / entry["path"].lstrip("/"), entry.get("content", "")))
    return written


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
