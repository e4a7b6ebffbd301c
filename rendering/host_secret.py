"""A secret a host service reads, fetched at boot from SSM Parameter Store: user-data names it, never holds it.

Launch template user-data is readable in clear by anyone allowed `ec2:DescribeLaunchTemplateVersions` (part of
ReadOnlyAccess) and by any process on the host that reaches instance metadata. So the program stores each secret
as a SecureString parameter (components.secret_parameter), and the host runs a one-shot step before the service
that needs it: `node_agents.secret_file`, from the agents' archive, with the instance role, which may read that
one parameter. It writes the file into SECRETS_DIR on /run, a tmpfs that is empty on every boot and that user
Docker shares with the host (RancherOS's system-volumes); the step runs again on every boot. The service
waits for the file (rendering.node_services.configured_service) and mounts the directory read-only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rendering.agents import AgentArchive, agent_service
from rendering.inputs import require_name
from stack_config.aws_names import NAME_LIMITS

SECRETS_DIR = "/run/swarm-cluster/secrets"
SECRETS_VOLUME = f"{SECRETS_DIR}:{SECRETS_DIR}:ro"
# SSM: letters, digits, `_.-`, `/` between levels, at most 15 levels; not under aws or ssm.
_PARAMETER = re.compile(r"(/[A-Za-z0-9_.-]+){1,15}")
_PARAMETER_TYPE = "aws:ssm/parameter:Parameter"


def parameter_name(environment: str, secret: str) -> str:
    """The SSM parameter that holds `secret` (e.g. consul-gossip-key) of one environment."""
    return _require_parameter(f"/swarm-cluster/{require_name(environment, 'environment')}/{secret}")


def _require_parameter(name: str) -> str:
    if not _PARAMETER.fullmatch(name) or len(name) > NAME_LIMITS[_PARAMETER_TYPE]:
        raise ValueError(f"{name!r} is not an SSM parameter name")
    return name


@dataclass(frozen=True)
class HostSecret:
    step: str  # the one-shot service that fetches it, e.g. consul-gossip-key
    parameter: str  # SSM parameter name (parameter_name)
    form: tuple[str, ...]  # ("--json-key", "encrypt") or ("--line",): node_agents.secret_file

    @property
    def path(self) -> str:
        """Where the step writes it, on the host and in the containers that mount SECRETS_VOLUME."""
        return f"{SECRETS_DIR}/{self.step}"


def secret_step(secret: HostSecret, agents: AgentArchive) -> dict[str, Any]:
    """User-data for the one-shot step that writes `secret.path`, to merge into the host's (which carries
    rendering.agents.bootstrap_files once)."""
    args = ["--parameter", _require_parameter(secret.parameter), "--output", secret.path, *secret.form]
    volumes = [f"{SECRETS_DIR}:{SECRETS_DIR}"]
    return agent_service(secret.step, "secret_file", agents, args=args, volumes=volumes, one_shot=True)
