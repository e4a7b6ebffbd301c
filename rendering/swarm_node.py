"""User-data of a classic Swarm node: engine flags and labels, variables, and the Swarm containers.

The engine keeps RancherOS's unix socket and adds tcp://0.0.0.0:2375, the Consul cluster store and
`--cluster-advertise=eth0:2375` for overlay networks; the internal registry (plain HTTP behind an
internal NLB) is trusted through `rancher.docker.insecure_registry`.

The Swarm agent (and on manager groups the replicated manager) are user-Docker services (see
rendering.node_services for why, and for the retries and deadline they get). They take their advertise
address from SWARM_ADVERTISE, which classic Swarm reads for `--advertise` and which node-bootstrap sets
per service (`swarm-agent/SWARM_ADVERTISE=<ip>:2375`) only after it validated the instance's private IP:
a node whose metadata has no IP has no such value, so swarm refuses to start instead of joining as
`<nil>:2375`, and node-health replaces the node.

Variables (`tagVariables`) are visible on the node in three places, and nowhere else:
    - `rancher.environment`: RancherOS services that list the name under `environment:`, and `ros env`;
    - VARIABLES_PROFILE: login shells (SSH, `ros console`), which source /etc/profile.d like the proxy and
      PATH settings RancherOS's console writes there (rancher/os v1.5.8 cmd/control/console_init.go);
    - VARIABLES_FILE (`NAME=value` lines, Docker's env-file format): containers that mount it read-only.
    Containers scheduled through Swarm get no node environment; pass values with `-e` at deploy time.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rendering.agents import AgentArchive, bootstrap_files
from rendering.drain_agent import DrainSpec, drain_service
from rendering.inputs import require_endpoint, require_image, require_text
from rendering.node_services import host_user_data, user_service
from rendering.primary_agent import PrimaryAgentSpec, primary_agent_service
from rendering.rancheros_host import RESERVED_VARIABLE_PREFIX, RESERVED_VARIABLES, host_document
from rendering.yaml_text import merge

ENGINE_PORT = 2375
MANAGER_PORT = 4000
ADVERTISE_VARIABLE = "SWARM_ADVERTISE"
SWARM_AGENT = "swarm-agent"  # RancherOS names a service's container after the service
SWARM_MANAGER = "swarm-manager"
VARIABLES_FILE = "/opt/swarm-cluster/environment"
VARIABLES_PROFILE = "/etc/profile.d/swarm-cluster.sh"
_LABEL_KEY = re.compile(r"docker\.[a-z0-9]([a-z0-9._-]*[a-z0-9])?")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class SwarmNodeSpec:
    environment: str  # docker.environment label, hostname prefix
    group: str  # node group name, e.g. "web", "managers"
    engine_labels: Mapping[str, str]  # the complete docker.* label set
    variables: Mapping[str, str]  # rancher.environment, e.g. {"DB_HOST": "db.staging.example.internal"}
    swarm_manager: bool  # also run `swarm manage --replication` on 4000
    swarm_image: str  # "swarm:1.2.9"
    consul_endpoint: str  # "consul.staging.example.internal:8500"
    registry_endpoint: str  # "docker.staging.example.internal:5000"
    ssh_authorized_keys: Sequence[str]
    instance_type: str  # sets rancher.resize_device
    drain: DrainSpec
    managers: int  # size of a manager group (fixed); 0 on workers
    agents: AgentArchive  # where the node fetches its agents' code
    primary_agent: PrimaryAgentSpec | None = None  # managers only: capacity metric and rebalancing


def render_swarm_node(spec: SwarmNodeSpec) -> str:
    what = f"node group {spec.group!r}"
    consul = require_endpoint(spec.consul_endpoint, f"{what}: consul_endpoint")
    registry = require_endpoint(spec.registry_endpoint, f"{what}: registry_endpoint")
    rancher: dict[str, Any] = {
        "docker": {
            "host": ["unix:///var/run/docker.sock", f"tcp://0.0.0.0:{ENGINE_PORT}"],
            "extra_args": [
                *label_args(spec.engine_labels, spec.environment, what),
                f"--cluster-store=consul://{consul}",
                f"--cluster-advertise=eth0:{ENGINE_PORT}",
            ],
            "insecure_registry": [registry],
        },
    }
    variables = environment_variables(spec.variables, what)
    if variables:
        rancher["environment"] = variables
    advertise = {f"{SWARM_AGENT}/{ADVERTISE_VARIABLE}": ENGINE_PORT}
    if spec.swarm_manager:
        advertise[f"{SWARM_MANAGER}/{ADVERTISE_VARIABLE}"] = MANAGER_PORT
    host = host_document(spec.environment, spec.group, spec.ssh_authorized_keys, spec.instance_type, advertise)
    document = merge(host, {"rancher": rancher, "write_files": variable_files(variables)})
    document = merge(document, swarm_services(spec, consul, what))
    return host_user_data(merge(document, node_agents(spec, consul)), what)


def label_args(labels: Mapping[str, str], environment: str, what: str) -> list[str]:
    """`--label=key=value` per label (one item each: `--label, a=1` pairs break uniqueItems)."""
    if labels.get("docker.environment") != environment or "docker.role" not in labels:
        raise ValueError(f"{what}: engine_labels must include docker.environment={environment} and docker.role")
    args = []
    for key, value in sorted(labels.items()):
        if not _LABEL_KEY.fullmatch(key):
            raise ValueError(f"{what}: label key {key!r} must be docker.<lower-case letters, digits, '.', '_', '-'>")
        require_text(value, f"{what}: value of label {key}", single_line=True)
        args.append(f"--label={key}={value}")
    return args


def environment_variables(variables: Mapping[str, str], what: str) -> dict[str, str]:
    for name, value in variables.items():
        if not _VARIABLE.fullmatch(name):
            raise ValueError(f"{what}: {name!r} is not a valid environment variable name")
        if name in RESERVED_VARIABLES or name.startswith(RESERVED_VARIABLE_PREFIX):
            raise ValueError(f"{what}: variable {name} is set by RancherOS or node-bootstrap; rename it")
        # One line each: Docker's env-file format has no quoting or continuation.
        require_text(value, f"{what}: value of variable {name}", single_line=True)
    return dict(sorted(variables.items()))


def variable_files(variables: Mapping[str, str]) -> list[dict[str, str]]:
    """The variables for login shells and as an env file containers can mount (written by the console)."""
    env_file = "".join(f"{name}={value}\n" for name, value in variables.items())
    profile = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in variables.items())
    return [
        {"path": VARIABLES_FILE, "permissions": "0644", "owner": "root", "content": env_file},
        {"path": VARIABLES_PROFILE, "permissions": "0644", "owner": "root", "content": profile},
    ]


def swarm_services(spec: SwarmNodeSpec, consul: str, what: str) -> dict[str, Any]:
    image = require_image(spec.swarm_image, f"{what}: swarm_image")
    discovery = f"consul://{consul}"
    common: dict[str, Any] = {"net": "host", "environment": [ADVERTISE_VARIABLE]}
    services = user_service(SWARM_AGENT, image, command=["join", discovery], **common)
    if spec.swarm_manager:
        manage = ["manage", "-H", f":{MANAGER_PORT}", "--replication", discovery]
        services = merge(services, user_service(SWARM_MANAGER, image, command=manage, **common))
    return services


def node_agents(spec: SwarmNodeSpec, consul: str) -> dict[str, Any]:
    """The agents every Swarm node runs (node_agents/), from the archive every host fetches."""
    manager = SWARM_MANAGER if spec.swarm_manager else None
    drain = drain_service(spec.drain, spec.agents, consul, SWARM_AGENT, manager, spec.managers, MANAGER_PORT)
    agents = merge({"write_files": bootstrap_files()}, drain)
    if spec.primary_agent is not None:
        agents = merge(agents, primary_agent_service(spec.primary_agent, spec.agents, consul, MANAGER_PORT))
    return agents
