"""Read this stack's configuration from the Pulumi runtime and validate it before any resource exists."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from rendering.yaml_text import compression_problem
from stack_config.loader import NAMESPACE, REGION_KEY, ConfigError, load_stack_config, relevant
from stack_config.models import StackConfig


def load() -> StackConfig:
    """The validated config, or a RunError that lists every problem (Pulumi prints it without a traceback).

    Refuses first, before any resource exists, an interpreter whose user-data bytes would differ from CI's.
    """
    problem = compression_problem()
    if problem is not None:
        raise pulumi.RunError(problem)
    try:
        raw = _raw_config()
        return load_stack_config(pulumi.get_stack(), raw, [k for k in raw if runtime_config.is_config_secret(k)])
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from None


def registry_http_secret() -> pulumi.Output[str] | None:
    return pulumi.Config(NAMESPACE).get_secret("registryHttpSecret")


def consul_gossip_key() -> pulumi.Output[str]:
    return pulumi.Config(NAMESPACE).require_secret("consulGossipKey")


def _raw_config() -> dict[str, Any]:
    """The keys the loader reads: the engine passes them through the environment, tests and the offline
    plan through the runtime's config map."""
    keys = {*runtime_config.get_config_env(), *runtime_config.CONFIG.get(), REGION_KEY}
    return {k: v for k in sorted(filter(relevant, keys)) if (v := runtime_config.get_config(k)) is not None}
