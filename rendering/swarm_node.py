"""User-data of a classic Swarm node: engine flags and labels, variables, and the Swarm containers.

The engine keeps RancherOS's unix socket and adds tcp://0.0.0.0:2375, the Consul cluster store and
`--cluster-advertise=eth0:2375` for overlay networks; the internal registry (plain HTTP behind an
internal NLB) is trusted through `rancher.docker.insecure_registry`.

The Swarm agent (and on manager groups the replicated manager) run in system-docker, host network,
`restart: always`: RancherOS starts its services on every boot, system-docker restarts them if they
exit, and restarting or upgrading user Docker leaves them alone (nor can they be removed through the
Swarm API). They advertise `$private_ipv4`, which RancherOS replaces with the instance's private IP
from EC2 metadata when it loads the config, before any service starts (see rendering.rancheros_host).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rendering.inputs import require_endpoint, require_image, require_text
from rendering.rancheros_host import (
    PRIVATE_IPV4,
    RESERVED_VARIABLE_PREFIX,
    RESERVED_VARIABLES,
    host_document,
    system_service,
)
from rendering.yaml_text import finish, merge

ENGINE_PORT = 2375
MANAGER_PORT = 4000
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
        "services": swarm_services(spec, consul, what),
    }
    variables = environment_variables(spec.variables, what)
    if variables:
        rancher["environment"] = variables
    document = merge(host_document(spec.environment, spec.group, spec.ssh_authorized_keys), {"rancher": rancher})
    return finish(document, what)


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
        require_text(value, f"{what}: value of variable {name}", single_line=False)
    return dict(sorted(variables.items()))


def swarm_services(spec: SwarmNodeSpec, consul: str, what: str) -> dict[str, Any]:
    image = require_image(spec.swarm_image, f"{what}: swarm_image")
    discovery = f"consul://{consul}"
    common: dict[str, Any] = {"labels": {"io.rancher.os.after": "docker"}, "net": "host", "restart": "always"}
    services = {
        "swarm-agent": system_service(
            image, command=["join", f"--advertise={PRIVATE_IPV4}:{ENGINE_PORT}", discovery], **common
        )
    }
    if spec.swarm_manager:
        manage = ["manage", "-H", f":{MANAGER_PORT}", "--replication"]
        services["swarm-manager"] = system_service(
            image, command=[*manage, "--advertise", f"{PRIVATE_IPV4}:{MANAGER_PORT}", discovery], **common
        )
    return services
