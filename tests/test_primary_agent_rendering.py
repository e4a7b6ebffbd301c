"""The managers run the primary-agent with settings node_agents.primary reads back; other groups do not."""

from __future__ import annotations

import json

import pytest

from node_agents.primary import SETTINGS_VARIABLE, Settings
from offline.stack_files import stack_config_map
from rendering.primary_agent import SERVICE
from rendering.yaml_text import decode_user_data
from stack_config.loader import load_stack_config
from tests.cloud_config_checks import parsed
from tests.conftest import STACKS, recorded

TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def services(stack: str, group: str) -> dict[str, dict[str, object]]:
    template = recorded(stack).named(TEMPLATE, f"{stack}-{group}-lt").inputs
    document = parsed(decode_user_data(template["userData"]))
    found: dict[str, dict[str, object]] = document["rancher"]["services"]
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_only_managers_run_the_primary_agent_with_settings_it_parses(stack: str) -> None:
    config = load_stack_config(stack, *stack_config_map(stack))
    for group in config.nodeGroups:
        running = services(stack, group.name)
        if not group.swarmManager:
            assert SERVICE not in running
            continue
        environment = dict(str(e).split("=", 1) for e in running[SERVICE]["environment"])  # type: ignore[attr-defined]
        settings = Settings.parse(json.loads(environment[SETTINGS_VARIABLE]))
        assert settings.environment == config.cluster.environment
        autoscaled = [g for g in config.nodeGroups if g.autoscaled]
        assert [(g.name, g.role, g.target_percent) for g in settings.groups] == [
            (g.name, g.role, float(g.reservation_target_percent)) for g in autoscaled
        ]
        assert settings.policy.roles == frozenset(g.role for g in config.nodeGroups if g.rebalance)
        rebalancer = config.swarm.rebalancer
        assert settings.interval == rebalancer.intervalSeconds
        assert settings.policy.max_moves == rebalancer.maxMovesPerInterval
        assert environment["SWARM_HOST"] == "tcp://127.0.0.1:4000"
