"""Run the CrossGuard policy pack over resources recorded by the offline harness, the way the engine would.

`violations(run.resources, stack="production")` returns one "policy: type name: message" string per violation.
Each resource's recorded inputs (wire names) become the policy's `props`, wrapped in pulumi-policy's own
unknown-checking proxy as in a real analysis, so rules see the same Mapping/Sequence shapes they see under the CLI.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any, Protocol

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policies.rules import POLICIES


class Recorded(Protocol):
    """What the harness records per resource (offline.harness.RecordedResource)."""

    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def urn(self) -> str: ...
    @property
    def parent(self) -> str | None: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...
    @property
    def protect(self) -> bool: ...


def options(protect: bool = False, parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)


def resource_args(
    resource_type: str,
    props: Mapping[str, Any],
    *,
    name: str = "test",
    urn: str | None = None,
    protect: bool = False,
    parent: str | None = None,
) -> ResourceValidationArgs:
    """The argument bag the engine passes a resource policy (props behind pulumi-policy's unknown-checking proxy)."""
    return ResourceValidationArgs(
        resource_type,
        unknown_checking_proxy(dict(props)),
        urn or f"urn:pulumi:test::swarm-cluster::{resource_type}::{name}",
        name,
        options(protect, parent),
        None,
    )


def policy_resource(
    resource_type: str,
    props: Mapping[str, Any],
    *,
    name: str = "test",
    urn: str | None = None,
    protect: bool = False,
    parent: str | None = None,
    property_dependencies: dict[str, list[PolicyResource]] | None = None,
) -> PolicyResource:
    return PolicyResource(
        resource_type,
        unknown_checking_proxy(dict(props)),
        urn or f"urn:pulumi:test::swarm-cluster::{resource_type}::{name}",
        name,
        options(protect, parent),
        None,
        None,
        [],
        property_dependencies or {},
    )


def _run(result: object) -> None:
    if inspect.isawaitable(result):

        async def wait() -> None:
            await result

        asyncio.run(wait())


def collect_resource(policy: ResourceValidationPolicy, args: ResourceValidationArgs) -> list[str]:
    """Messages `policy` reports for one resource. An unknown it trips over reports nothing, as under the CLI."""
    messages: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        messages.append(message)

    with suppress(UnknownValueError):
        _run(policy.validate(args, report))
    return messages


def collect_stack(policy: StackValidationPolicy, args: StackValidationArgs) -> list[tuple[str, str | None]]:
    """(message, urn) pairs `policy` reports for a stack."""
    found: list[tuple[str, str | None]] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append((message, urn))

    with suppress(UnknownValueError):
        _run(policy.validate(args, report))
    return found


@contextmanager
def _stack_env(stack: str | None) -> Iterator[None]:
    """Set PULUMI_STACK as the CLI does for a policy pack process, and restore it afterwards."""
    if stack is None:
        yield
        return
    previous = os.environ.get("PULUMI_STACK")
    os.environ["PULUMI_STACK"] = stack
    try:
        yield
    finally:
        if previous is None:
            del os.environ["PULUMI_STACK"]
        else:
            os.environ["PULUMI_STACK"] = previous


def _enabled(policy: Policy) -> bool:
    return policy.enforcement_level != EnforcementLevel.DISABLED


def violations(
    resources: Iterable[Recorded], *, stack: str | None = None, policies: Iterable[Policy] = POLICIES
) -> list[str]:
    """Every violation of every policy over the recorded resources, as "policy: type name: message".

    `stack` plays the engine's stack name (PULUMI_STACK); without it, production is detected from each group's
    `docker.environment` tag alone. Stack policies get all resources, with parents linked; recorded resources carry
    no property dependencies, so the S3 rule matches companions to buckets by the `bucket` name there.
    """
    recorded = list(resources)
    by_urn: dict[str, PolicyResource] = {}
    for r in recorded:
        by_urn[r.urn] = policy_resource(r.type, r.inputs, name=r.name, urn=r.urn, protect=r.protect, parent=r.parent)
    for r in recorded:
        if r.parent is not None and r.parent in by_urn:
            by_urn[r.urn].parent = by_urn[r.parent]
    names = {r.urn: (r.type, r.name) for r in recorded}

    found: list[str] = []
    with _stack_env(stack):
        for policy in policies:
            if not _enabled(policy):
                continue
            if isinstance(policy, ResourceValidationPolicy):
                for r in recorded:
                    args = resource_args(r.type, r.inputs, name=r.name, urn=r.urn, protect=r.protect, parent=r.parent)
                    found.extend(f"{policy.name}: {r.type} {r.name}: {m}" for m in collect_resource(policy, args))
            elif isinstance(policy, StackValidationPolicy):
                stack_args = StackValidationArgs(list(by_urn.values()))
                for message, urn in collect_stack(policy, stack_args):
                    kind, name = names.get(urn or "", ("stack", ""))
                    found.append(f"{policy.name}: {kind} {name}: {message}")
    return found
