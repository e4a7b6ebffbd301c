"""Rendering user-data inside a component: a renderer's refusal is the user's to fix, not a crash."""

from __future__ import annotations

from collections.abc import Callable

import pulumi


def rendered(hosts: str, render: Callable[[], str]) -> str:
    """`render()`, with a refusal (too large, a value RancherOS would mangle) turned into a RunError,
    which Pulumi and the offline plan print as one message without a traceback."""
    try:
        return render()
    except ValueError as error:
        raise pulumi.RunError(f"cannot render the user-data of {hosts}: {error}") from None
