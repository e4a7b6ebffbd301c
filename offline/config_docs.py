"""Write the generated configuration reference into README.md and the stack-file JSON Schema.

python3 dev.py docs
"""

from __future__ import annotations

import sys

from offline.stack_files import PROJECT_ROOT
from stack_config.reference import SCHEMA_FILE, schema_text, updated_readme


def generated() -> dict[str, str]:
    """Every generated file's path (from the project root) and its wanted text."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    return {"README.md": updated_readme(readme), SCHEMA_FILE: schema_text()}


def main() -> int:
    for name, text in generated().items():
        path = PROJECT_ROOT / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            print(f"{name}: up to date")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"{name}: regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
