"""Rendering user-data inside a component: a renderer's refusal is the user's to fix, not a crash."""

from __future__ import annotations

from collections.abc import Callable

import pulumi


def rendered(config_key: str, render: Callable[[], str]) -> str:
    """`render()`, with a refusal (too large, a value RancherOS would mangle) turned into a RunError naming the
    stack file and the key of the hosts, which Pulumi and the offline plan print as one line without a traceback."""
    stack_file = f"Pulumi.{pulumi.get_stack()}.yaml"
    try:
        return render()
    except ValueError as error:
        raise pulumi.RunError(f"{stack_file}: {config_key}: {error}") from None
