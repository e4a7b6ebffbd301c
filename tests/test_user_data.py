"""Every rendered user-data of both stacks: accepted by RancherOS, consistent with the tags, unchanged
unless the golden files say so."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from offline.artifacts import MARKER, write_artifacts
from offline.harness import RecordedResource
from rendering.yaml_text import decode_user_data
from stack_config.instance_types import ROOT_DISK
from tests.cloud_config_checks import (
    SCHEMA_PATH,
    duplicate_list_items,
    non_preloaded_system_services,
    parsed,
    schema_errors,
    shellcheck_errors,
    unresolved_values,
)
from tests.conftest import STACKS, recorded
from tests.test_swarm_node_groups import _tags, cases, config

GOLDEN = Path(__file__).parent / "golden"
USER_DATA_LIMIT = 16_384


def _templates() -> list[tuple[str, str]]:
    """Every host's launch template, as the golden files name the hosts (the first test checks them against the
    runs): parametrizing from the runs would run both stacks while collecting, in every xdist worker."""
    return [
        (stack, f"{host.name}-lt") for stack in STACKS for host in sorted((GOLDEN / stack).iterdir()) if host.is_dir()
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_every_launch_template_is_checked(stack: str) -> None:
    launch_templates = sorted(t.name for t in recorded(stack).of_type("aws:ec2/launchTemplate:LaunchTemplate"))
    assert launch_templates == sorted(template for of, template in _templates() if of == stack)


def _text(stack: str, template: str) -> str:
    resource: RecordedResource = recorded(stack).named("aws:ec2/launchTemplate:LaunchTemplate", template)
    return decode_user_data(resource.inputs["userData"])


@pytest.mark.parametrize(("stack", "template"), _templates())
def test_rancheros_accepts_the_user_data(stack: str, template: str) -> None:
    text = _text(stack, template)
    assert text.split("\n", 1)[0] == "#cloud-config"
    stored = recorded(stack).named("aws:ec2/launchTemplate:LaunchTemplate", template).inputs["userData"]
    assert len(base64.b64decode(stored)) <= USER_DATA_LIMIT
    assert schema_errors(text) == []
    assert duplicate_list_items(text) == []
    assert "args" not in (parsed(text).get("rancher", {}).get("docker") or {})


@pytest.mark.parametrize(("stack", "template"), _templates())
def test_only_preloaded_images_run_in_system_docker_and_nothing_is_left_unresolved(stack: str, template: str) -> None:
    text = _text(stack, template)
    assert non_preloaded_system_services(text) == []
    assert unresolved_values(text) == []


@pytest.mark.parametrize(("stack", "template"), _templates())
def test_every_user_service_is_pulled_with_retries_and_watched(stack: str, template: str) -> None:
    document = parsed(_text(stack, template))
    services = document["rancher"]["services"]
    user = {n: s for n, s in services.items() if s["labels"].get("io.rancher.os.scope") != "system"}
    assert user, "every host runs at least one user-Docker service"
    scripts = {f["path"]: f["content"] for f in document["write_files"]}
    for name, service in user.items():
        assert "node-images" in service["labels"]["io.rancher.os.after"].split(",")
        one_shot = service.get("command", [])[2:3] == ["secret_file"]  # fetches a secret, then is done
        assert service["restart"] == ("on-failure" if one_shot else "always")
        line = f"{name} {service['image']}" + (" once" if one_shot else "")
        for watcher in ("/usr/local/sbin/node-images", "/usr/local/sbin/node-health"):
            listing = re.search(r"^services='([^']*)'$", scripts[watcher], re.MULTILINE)
            assert listing is not None and line in listing.group(1).splitlines()


@pytest.mark.parametrize(("stack", "template"), _templates())
def test_the_root_disk_is_resized_on_the_device_the_instance_type_shows(stack: str, template: str) -> None:
    instance_type = recorded(stack).named("aws:ec2/launchTemplate:LaunchTemplate", template).inputs["instanceType"]
    nitro = instance_type.split(".")[0] in {"t3", "t3a", "m5", "c5", "r5", "m6i", "c6i", "r6i"}
    resize_device = parsed(_text(stack, template))["rancher"]["resize_device"]
    assert resize_device == ROOT_DISK["nitro" if nitro else "xen"]
    assert nitro, f"{instance_type}: both stacks run on Nitro types"


@pytest.mark.parametrize(("stack", "template"), _templates())
def test_a_node_that_powers_itself_off_is_terminated_so_its_group_replaces_it(stack: str, template: str) -> None:
    inputs = recorded(stack).named("aws:ec2/launchTemplate:LaunchTemplate", template).inputs
    assert inputs["instanceInitiatedShutdownBehavior"] == "terminate"


@pytest.mark.parametrize(("stack", "template"), _templates())
def test_every_shell_snippet_passes_shellcheck(stack: str, template: str) -> None:
    assert shellcheck_errors(_text(stack, template)) == []


@pytest.mark.parametrize(("stack", "name"), cases())
def test_labels_and_variables_match_the_group_tags(stack: str, name: str) -> None:
    run, cfg = recorded(stack), config(stack)
    tags = _tags(run.named("aws:autoscaling/group:Group", f"{stack}-{name}-asg"))
    rancher = parsed(_text(stack, f"{stack}-{name}-lt"))["rancher"]
    labels = {
        arg.removeprefix("--label=").split("=", 1)[0]: arg.removeprefix("--label=").split("=", 1)[1]
        for arg in rancher["docker"]["extra_args"]
        if arg.startswith("--label=")
    }
    assert labels == {k: v for k, v in tags.items() if k.startswith("docker.")}
    for variable in cfg.tagVariables:
        assert rancher["environment"][variable.variable] == tags[variable.tag] == variable.value


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_artifacts_match_the_golden_files(stack: str, tmp_path: Path) -> None:
    written = write_artifacts(recorded(stack), tmp_path)
    expected_dir = GOLDEN / stack
    actual = {p.relative_to(tmp_path): p.read_text() for p in written}
    expected = {p.relative_to(expected_dir): p.read_text() for p in expected_dir.rglob("*") if p.is_file()}
    del expected[Path(MARKER)]
    assert sorted(actual) == sorted(expected), "files differ; run `python3 dev.py golden` and review the diff"
    changed = [str(path) for path in actual if actual[path] != expected[path]]
    assert not changed, f"rendered artifacts changed: {changed}; run `python3 dev.py golden` and review the diff"


def test_vendored_schema_is_rancheros_own() -> None:
    """The copy the tests use matches the team's reference copy, where one is checked out beside the repo."""
    reference = Path(__file__).resolve().parents[2] / "shared" / "rancheros" / "cloud-config.schema.json"
    if not reference.exists():
        pytest.skip("no shared/ checkout beside the repository to compare with")
    assert SCHEMA_PATH.read_bytes() == reference.read_bytes()
