"""Day 2: updates keep the size autoscaling chose, and a tag edit replaces no instance."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import STACKS, recorded
from tests.plan_runs import COST_TAGS, retagged

GROUP = "aws:autoscaling/group:Group"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def _without_tags(inputs: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in inputs.items() if key != "tags"}


@pytest.mark.parametrize("stack", STACKS)
def test_only_autoscaled_groups_ignore_desired_capacity(stack: str) -> None:
    groups = recorded(stack).of_type(GROUP)
    for group in groups:
        autoscaled = group.inputs["minSize"] != group.inputs["maxSize"]
        assert group.ignore_changes == (("desiredCapacity",) if autoscaled else ()), group.name
    kinds = {g.inputs["minSize"] != g.inputs["maxSize"] for g in groups}
    assert kinds == {True, False}, "each stack has autoscaled and fixed-size groups"


@pytest.mark.parametrize("stack", STACKS)
def test_a_cost_tag_edit_changes_no_launch_template_input(stack: str) -> None:
    before, after = recorded(stack), retagged(stack)
    templates = before.of_type(TEMPLATE)
    assert len(templates) == 8
    for template in templates:
        edited = after.named(TEMPLATE, template.name)
        # The template resource's own tags are updated in place (CreateTags): no new version.
        assert _without_tags(edited.inputs) == _without_tags(template.inputs), template.name
        assert COST_TAGS.items() <= edited.inputs["tags"].items()


@pytest.mark.parametrize("stack", STACKS)
def test_instances_get_the_edited_cost_tags_from_their_group(stack: str) -> None:
    before, after = recorded(stack), retagged(stack)
    for group in after.of_type(GROUP):
        tags = {t["key"]: (t["value"], t["propagateAtLaunch"]) for t in group.inputs["tags"]}
        assert {k: (v, True) for k, v in COST_TAGS.items()}.items() <= tags.items(), group.name
        old = before.named(GROUP, group.name).inputs
        assert _without_tags(group.inputs) == _without_tags(old), "only the tags change: no instance refresh"
