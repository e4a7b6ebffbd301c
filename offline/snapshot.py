"""Print, as JSON, every resource one stack's program declares, run from any checkout of this project.

    python offline/snapshot.py PROJECT_DIR STACK

Run by path, so that PROJECT_DIR's own code (another commit's, for `dev.py plan --against`) is imported, not
this file's neighbours. Uses only what every commit's harness has had: `run_stack` and its records.
Secret inputs are reduced to a digest: a plan artifact shows that a secret changed, never its value.
Exit status: 0 printed, 2 the stack's configuration is invalid (the message on stderr), 1 the program failed.
"""

from __future__ import annotations

import gc
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

# The outputs other resources refer to: when a resource is replaced, they change.
REFERENCED_OUTPUTS = ("arn", "id", "zoneId", "dnsName", "bucket")


def main(argv: list[str]) -> int:
    project, stack = Path(argv[0]).resolve(), argv[1]
    sys.path.insert(0, str(project))
    import pulumi

    from offline.harness import run_stack
    from offline.stack_files import StackFileError

    try:
        run = run_stack(stack, project_dir=project)
    except (pulumi.RunError, StackFileError) as error:
        print(str(error), file=sys.stderr)
        return 2
    json.dump({"stack": stack, "resources": [record(r) for r in run.resources]}, sys.stdout, sort_keys=True)
    return 0


def record(resource: Any) -> dict[str, Any]:
    """One resource as the comparison sees it (`dev.py plan --against` records its working tree's run alike)."""
    secret = set(getattr(resource, "secret_inputs", ()))
    return {
        "urn": resource.urn,
        "type": resource.type,
        "name": resource.name,
        "parent": resource.parent,
        "custom": resource.custom,
        "inputs": {k: _digest(v) if k in secret else v for k, v in resource.inputs.items()},
        "secretInputs": sorted(secret),
        "references": sorted(
            {str(v) for k, v in {"id": resource.id, **resource.outputs}.items() if k in REFERENCED_OUTPUTS and v}
        ),
        "protect": resource.protect,
        "retainOnDelete": getattr(resource, "retain_on_delete", False),
        "deleteBeforeReplace": getattr(resource, "delete_before_replace", False),
        "ignoreChanges": list(getattr(resource, "ignore_changes", ())),
    }


def _digest(value: Any) -> dict[str, str]:
    text = json.dumps(value, sort_keys=True, default=str)
    return {"secret": "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]}


if __name__ == "__main__":
    status = main(sys.argv[1:])
    gc.freeze()  # the interpreter's last collection would walk the run's whole heap only to free it at exit
    sys.exit(status)
