"""Run the real `__main__.py` for one stack in-process against Pulumi's mocks, recording everything.

This mirrors what the Python language host does under `pulumi up` (config map -> configure ->
run_in_stack(runpy)), with a monitor that records every registration instead of an engine. Nothing here
changes what the program does: it sees the same config, the same project and stack names.
"""

from __future__ import annotations

import asyncio
import gc
import os
import runpy
import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format, message
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _ensure_event_loop

from offline.fake_cloud import fake_ami, fake_caller_identity, fake_state
from offline.stack_files import PROJECT_ROOT, project_name, stack_config_map

STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class RecordedResource:
    type: str
    name: str
    urn: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]  # secrets revealed: this is an offline run with placeholder secrets
    secret_inputs: tuple[str, ...]  # top-level inputs Pulumi would encrypt in state
    id: str  # what the offline cloud answered: the id and every output the program can read
    outputs: dict[str, Any]
    depends_on: tuple[str, ...]  # every URN it waits for: explicit depends_on and the resources of its inputs
    input_dependencies: dict[str, tuple[str, ...]]  # per input, the resources its value came from
    options: dict[str, Any]  # every resource option the program set, JSON-ready (see `resource_options`)

    @property
    def protect(self) -> bool:
        return bool(self.options.get("protect"))

    @property
    def retain_on_delete(self) -> bool:
        return bool(self.options.get("retainOnDelete"))

    @property
    def ignore_changes(self) -> tuple[str, ...]:
        return tuple(self.options.get("ignoreChanges", ()))

    @property
    def delete_before_replace(self) -> bool:
        return bool(self.options.get("deleteBeforeReplace"))


@dataclass
class StackRun:
    stack: str
    resources: list[RecordedResource] = field(default_factory=list)
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, type_: str, name: str) -> RecordedResource:
        matches = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(matches) != 1:
            known = sorted(r.name for r in self.of_type(type_))
            raise KeyError(f"{len(matches)} {type_} named {name!r}; this type has: {known}")
        return matches[0]

    def children(self) -> dict[str, list[RecordedResource]]:
        """Every parent's children by its URN, in the run's order; one pass, for runs of thousands of resources."""
        by_parent: dict[str, list[RecordedResource]] = {}
        for resource in self.resources:
            by_parent.setdefault(resource.parent or "", []).append(resource)
        return by_parent


class UnmockedInvoke(Exception):
    """The program called a data source the offline run cannot answer; answering {} would hide bugs."""


class DuplicateUrn(pulumi.RunError):
    """Two resources the engine would give one URN: `pulumi up` refuses the second; the mocks would not."""


class _FakeCloud(pulumi.runtime.Mocks):
    def __init__(self, region: str) -> None:
        self.region = region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        return fake_state(args.typ, args.name, args.inputs, self.region)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "aws:ec2/getAmi:getAmi":
            return fake_ami(args.args), []
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return fake_caller_identity(), []
        raise UnmockedInvoke(f"no offline answer for invoke {args.token}; add one in offline/harness.py")


class _RecordingMonitor(mocks.MockMonitor):
    def __init__(self, run: StackRun, cloud: _FakeCloud) -> None:
        super().__init__(cloud)
        self.run = run
        self.lock = threading.Lock()
        self.thread_loops: set[asyncio.AbstractEventLoop] = set()
        # The engine's URN carries every ancestor's type (`a$b$child`), the mocks' only the parent's.
        self.engine_types: dict[str, str] = {}
        self.engine_urns: set[str] = set()

    def _remember_thread_loop(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            with self.lock:
                self.thread_loops.add(_ensure_event_loop())

    def RegisterResource(self, request: Any) -> Any:
        engine_type = self._claim_urn(request)
        response = super().RegisterResource(request)
        self.engine_types[response.urn] = engine_type
        self._remember_thread_loop()
        if request.type == STACK_TYPE:
            return response
        registered = self.resources[response.urn]
        inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        record = RecordedResource(
            type=request.type,
            name=request.name,
            urn=response.urn,
            parent=request.parent or None,
            custom=request.custom,
            inputs={key: _reveal(value) for key, value in inputs.items()},
            secret_inputs=tuple(sorted(key for key, value in inputs.items() if _is_secret(value))),
            id=registered.id,
            outputs=registered.state,
            depends_on=tuple(sorted(request.dependencies)),
            input_dependencies={key: tuple(sorted(deps.urns)) for key, deps in request.propertyDependencies.items()},
            options=resource_options(request),
        )
        with self.lock:
            self.run.resources.append(record)
        return response

    def _claim_urn(self, request: Any) -> str:
        """The engine's qualified type of the resource, after checking its URN is not taken."""
        if request.type == STACK_TYPE:
            return ""
        parent = self.engine_types.get(request.parent)
        engine_type = f"{parent}${request.type}" if parent else request.type
        urn = f"urn:pulumi:{self.run.stack}::{settings.get_project()}::{engine_type}::{request.name}"
        with self.lock:
            if urn in self.engine_urns:
                raise DuplicateUrn(f"Duplicate resource URN '{urn}'; every resource needs a unique name")
            self.engine_urns.add(urn)
        return engine_type

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if "::" + STACK_TYPE + "::" in request.urn:
            self.run.exports.update(rpc.deserialize_properties(request.outputs, keep_unknowns=True))
        return super().RegisterResourceOutputs(request)

    def Invoke(self, request: Any) -> Any:
        with self.lock:
            self.run.invokes.append((request.tok, rpc.deserialize_properties(request.args)))
        response = super().Invoke(request)
        self._remember_thread_loop()
        return response


# Request fields that carry a resource option, by the name Pulumi's docs and state give the option.
_OPTION_FIELDS = {
    "additionalSecretOutputs": "additionalSecretOutputs",
    "aliases": "aliases",
    "aliasURNs": "aliases",
    "customTimeouts": "customTimeouts",
    "deletedWith": "deletedWith",
    "hideDiffs": "hideDiffs",
    "hooks": "hooks",
    "ignoreChanges": "ignoreChanges",
    "importId": "import",
    "pluginDownloadURL": "pluginDownloadURL",
    "protect": "protect",
    "provider": "provider",
    "providers": "providers",
    "replaceOnChanges": "replaceOnChanges",
    "replace_with": "replaceWith",
    "replacement_trigger": "replacementTrigger",
    "retainOnDelete": "retainOnDelete",
    "transforms": "transforms",
    "version": "version",
}


def resource_options(request: Any) -> dict[str, Any]:
    """The options the program set on one RegisterResource request, leaving out what it did not set.

    `dependsOn` is what the resource waits for beyond the resources its inputs carry (the SDK sends the union).
    """
    options: dict[str, Any] = {}
    for field_name, option in _OPTION_FIELDS.items():
        value = _field_value(request, field_name)
        if value not in (None, "", [], {}):
            options[option] = value
    if request.deleteBeforeReplaceDefined:
        options["deleteBeforeReplace"] = request.deleteBeforeReplace
    through_inputs = {urn for deps in request.propertyDependencies.values() for urn in deps.urns}
    explicit = sorted(set(request.dependencies) - through_inputs)
    if explicit:
        options["dependsOn"] = explicit
    return dict(sorted(options.items()))


def _field_value(request: Any, name: str) -> Any:
    descriptor = request.DESCRIPTOR.fields_by_name[name]
    if descriptor.has_presence and not request.HasField(name):
        return None
    value = getattr(request, name)
    if isinstance(value, message.Message):
        return json_format.MessageToDict(value)
    if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
        return {key: _message_or_value(item) for key, item in value.items()}
    if descriptor.label == descriptor.LABEL_REPEATED:
        return [_message_or_value(item) for item in value]
    return value


def _message_or_value(value: Any) -> Any:
    return json_format.MessageToDict(value) if isinstance(value, message.Message) else value


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def _reveal(value: Any) -> Any:
    if _is_secret(value):
        return _reveal(value["value"])
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def run_stack(
    stack: str,
    *,
    preview: bool = False,
    config: Mapping[str, str] | None = None,
    secret_keys: Collection[str] = (),
    project_dir: Path = PROJECT_ROOT,
    record: StackRun | None = None,
) -> StackRun:
    """Run the program for `stack`; `config` replaces the stack file's config map (for tests of bad input),
    with `secret_keys` the keys of it the engine would mark secret.

    Raises whatever the program raises: `pulumi.RunError` for a bad config, as under `pulumi up`; what was
    registered until then is in `record`, when the caller passes one.

    The program runs in a thread of its own, at the top of a short stack as under the language host: the SDK
    captures the caller's stack for every resource it registers, and under pytest that walked some fifty frames
    of the test runner's, a fifth of each run.
    """
    outcome: list[StackRun | BaseException] = []

    def program_thread() -> None:
        try:
            outcome.append(_run(stack, preview, config, secret_keys, project_dir, record))
        except BaseException as error:  # re-raised in the caller's thread below
            outcome.append(error)

    thread = threading.Thread(target=program_thread, name=f"pulumi-program-{stack}", daemon=True)
    thread.start()
    thread.join()
    (result,) = outcome
    if isinstance(result, BaseException):
        raise result
    return result


def _run(
    stack: str,
    preview: bool,
    config: Mapping[str, str] | None,
    secret_keys: Collection[str],
    project_dir: Path,
    record: StackRun | None,
) -> StackRun:
    values, secrets = stack_config_map(stack, project_dir) if config is None else (dict(config), list(secret_keys))
    region = values.get("aws:region", "us-east-1")
    run = StackRun(stack=stack) if record is None else record
    monitor = _RecordingMonitor(run, _FakeCloud(region))
    _clear_config_environment()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    with _cyclic_collector_paused():
        try:
            set_all_config(values, secrets)
            settings.configure(_mock_settings(monitor, project_name(project_dir), stack, preview))
            # The outputs a failed run left unfinished are not this run's (the SDK's mocks clear them the same way).
            settings.SETTINGS.outputs.clear()
            program = str(project_dir / "__main__.py")

            async def run_program() -> None:
                runpy.run_path(program, run_name="__main__")
                await _outputs_settled()

            loop.run_until_complete(run_in_stack(run_program))
        except BaseException:
            _wind_down_failed_run(loop)
            raise
        finally:
            _close_loops(loop, monitor)
    run.resources.sort(key=lambda r: r.urn)
    return run


async def _outputs_settled() -> None:
    """Wait once for every output the program made, before the SDK's own wait.

    The SDK waits in rounds of `asyncio.wait(FIRST_COMPLETED)` over every pending output: at 200 node groups, 40
    rounds over 40,000 outputs, a fifth of the plan. This waits for each once; the SDK's wait then finds them done.
    A failed output stays in the SDK's set, so the SDK still raises its error.
    """
    while True:
        with settings.SETTINGS.lock:
            pending = [task for task in settings.SETTINGS.outputs if not task.done()]
        if not pending:
            return
        await asyncio.wait(pending)


@contextmanager
def _cyclic_collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while the program runs.

    A run keeps most of what it creates alive until it ends (resources, outputs, their tasks), so each full pass
    of the collector walks a heap that only grows, and the passes grow with it: at 200 node groups they were half
    of the plan's CPU time. Reference counting still frees what it can; the cycles wait for the next collection
    after the run, and peak memory stays the same (measured with bench/plan_scaling.py, see the README).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # What the run allocated counts as old: collecting it as young at the next allocation would be one pass
        # over all of it, as long as all the passes saved.
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()


def _mock_settings(monitor: _RecordingMonitor, project: str, stack: str, preview: bool) -> settings.Settings:
    features = set(monitor.GetDeploymentInfo(None).supportedFeatures)
    return mocks.MockSettings(
        monitor=monitor,
        monitor_features=features,
        engine=mocks.MockEngine(None),
        project=project,
        stack=stack,
        dry_run=preview,
        organization="offline",
        callbacks=None,
    )


def _clear_config_environment() -> None:
    """Config the engine would not pass must not leak in from the caller's shell."""
    for key in [k for k in os.environ if k.startswith("PULUMI_CONFIG")]:
        del os.environ[key]


def _wind_down_failed_run(loop: asyncio.AbstractEventLoop) -> None:
    """After the program failed, its other registrations are moot: do not report the tasks and futures
    they leave behind ("Task was destroyed but it is pending!", "Future exception was never retrieved"),
    so the one error raised is all the user sees."""
    loop.set_exception_handler(lambda _loop, _context: None)


def _close_loops(loop: asyncio.AbstractEventLoop, monitor: _RecordingMonitor) -> None:
    """Close the main loop and the ones the mock monitor opened in executor threads.

    Left open, they are collected at interpreter exit and print "Invalid file descriptor: -1".
    """
    loop.run_until_complete(loop.shutdown_default_executor())
    for thread_loop in monitor.thread_loops:
        thread_loop.close()
    loop.close()
    asyncio.set_event_loop(None)
