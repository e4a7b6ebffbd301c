"""Swarm node user-data, the shared host pieces, and the reusable checks themselves."""

from __future__ import annotations

import dataclasses
import re
import string
import subprocess
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rendering.agents import AgentArchive
from rendering.drain_agent import DrainSpec
from rendering.inputs import METADATA_TOKENS
from rendering.swarm_node import SwarmNodeSpec, render_swarm_node
from rendering.yaml_text import UserDataTooLarge, dump_yaml
from tests.cloud_config_checks import (
    duplicate_list_items,
    incompressible,
    schema_errors,
    shell_snippets,
    shellcheck_errors,
)
from tests.cloud_config_checks import parsed as parsed_text

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0ZXN0a2V5Zm9ydGhlcmVuZGVyZXJ0ZXN0cw== ops@example"
CONSUL = "consul.staging.example.internal:8500"
REGISTRY = "docker.staging.example.internal:5000"


def spec(**changes: Any) -> SwarmNodeSpec:
    base = SwarmNodeSpec(
        environment="staging",
        group="web",
        engine_labels={"docker.environment": "staging", "docker.role": "web", "docker.tier": "edge"},
        variables={"DB_HOST": "db.staging.example.internal", "QUEUE_HOST": "queue.staging.example.internal"},
        swarm_manager=False,
        swarm_image="swarm:1.2.9",
        consul_endpoint=CONSUL,
        registry_endpoint=REGISTRY,
        ssh_authorized_keys=[KEY],
        instance_type="m6i.large",
        drain=DrainSpec("staging-web", "staging-web-drain", 300),
        managers=0,
        agents=AgentArchive(f"https://bucket.s3.eu-west-1.amazonaws.com/node-agents/{'a' * 64}.zip", "eu-west-1"),
    )
    return dataclasses.replace(base, **changes)


def parsed(node: SwarmNodeSpec) -> dict[str, Any]:
    document = parsed_text(render_swarm_node(node))
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("manager", [False, True], ids=["worker", "manager"])
def test_user_data_passes_every_check(manager: bool) -> None:
    text = render_swarm_node(spec(swarm_manager=manager, group="managers" if manager else "web"))
    assert text.split("\n", 1)[0] == "#cloud-config"
    assert schema_errors(text) == []
    assert duplicate_list_items(text) == []
    assert shellcheck_errors(text) == []
    docker = parsed_text(text)["rancher"]["docker"]
    assert "args" not in docker


def test_engine_flags() -> None:
    docker = parsed(spec())["rancher"]["docker"]
    assert docker["extra_args"] == [
        "--label=docker.environment=staging",
        "--label=docker.role=web",
        "--label=docker.tier=edge",
        f"--cluster-store=consul://{CONSUL}",
        "--cluster-advertise=eth0:2375",
    ]
    assert docker["host"] == ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"]
    assert docker["insecure_registry"] == [REGISTRY]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"role": "web"}, "docker.environment"),
        ({"docker.role": "web", "docker.environment": "production"}, "docker.environment"),
        ({"docker.environment": "staging"}, "docker.role"),
        ({"docker.environment": "staging", "docker.role": "web", "com.tier": "x"}, "label key"),
        ({"docker.environment": "staging", "docker.role": "web", "docker.Tier": "x"}, "label key"),
        ({"docker.environment": "staging", "docker.role": "web", "docker.tier": "a\nb"}, "docker.tier"),
        ({"docker.environment": "staging", "docker.role": "web", "docker.ip": "$private_ipv4"}, "private_ipv4"),
    ],
)
def test_bad_labels_are_refused(labels: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        render_swarm_node(spec(engine_labels=labels))


@pytest.mark.parametrize("name", ["1ST", "DB-HOST", "DB HOST", "", "AWS_LOCAL_IPV4", "AWS_ACCESS_KEY_ID", "VERSION"])
def test_bad_variable_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="variable"):
        render_swarm_node(spec(variables={name: "x"}))


def test_variable_values_rancheros_would_rewrite_are_refused() -> None:
    for token in METADATA_TOKENS:
        with pytest.raises(ValueError, match=re.escape(token)):
            render_swarm_node(spec(variables={"ADDR": f"http://{token}:80"}))


def test_swarm_agent_and_manager_are_user_docker_services_advertising_the_validated_ip() -> None:
    worker = parsed(spec())["rancher"]["services"]
    manager = parsed(spec(swarm_manager=True, group="managers"))
    services = manager["rancher"]["services"]
    assert "swarm-manager" not in worker
    agent = worker["swarm-agent"]
    assert agent["image"] == "swarm:1.2.9"
    assert agent["command"] == ["join", f"consul://{CONSUL}"]
    assert services["swarm-manager"]["command"] == ["manage", "-H", ":4000", "--replication", f"consul://{CONSUL}"]
    for service in (agent, services["swarm-agent"], services["swarm-manager"]):
        assert service["restart"] == "always"
        assert service["net"] == "host"
        assert service["environment"] == ["SWARM_ADVERTISE"]
        assert service["labels"] == {"io.rancher.os.after": "node-images"}
    # node-bootstrap stores each service's own SWARM_ADVERTISE once it validated the private IP.
    bootstrap = next(f for f in manager["write_files"] if f["path"] == "/usr/local/sbin/node-bootstrap")
    assert "advertise='swarm-agent/SWARM_ADVERTISE 2375\nswarm-manager/SWARM_ADVERTISE 4000'" in bootstrap["content"]
    assert "$private_ipv4" not in render_swarm_node(spec(swarm_manager=True, group="managers"))


def test_variables_reach_rancheros_services_login_shells_and_an_env_file() -> None:
    document = parsed(spec(variables={"DB_HOST": "db.example.internal", "QUOTED": "it's $HOME"}))
    assert document["rancher"]["environment"] == {"DB_HOST": "db.example.internal", "QUOTED": "it's $HOME"}
    files = {f["path"]: f for f in document["write_files"]}
    assert files["/opt/swarm-cluster/environment"]["content"] == "DB_HOST=db.example.internal\nQUOTED=it's $HOME\n"
    profile = files["/etc/profile.d/swarm-cluster.sh"]["content"]
    shell = subprocess.run(
        ["sh", "-c", f'{profile}printf \'%s|%s\' "$DB_HOST" "$QUOTED"'], capture_output=True, text=True, check=True
    )
    assert shell.stdout == "db.example.internal|it's $HOME"
    for written in (files["/opt/swarm-cluster/environment"], files["/etc/profile.d/swarm-cluster.sh"]):
        assert "container" not in written  # the console's /etc: login shells and user Docker's bind mounts
        assert written["permissions"] == "0644"


def test_multi_line_variable_values_are_refused() -> None:
    with pytest.raises(ValueError, match="line-break"):
        render_swarm_node(spec(variables={"DB_HOST": "a\nb"}))


def test_bootstrap_runs_before_user_docker() -> None:
    document = parsed(spec())
    service = document["rancher"]["services"]["node-bootstrap"]
    assert service["labels"] == {
        "io.rancher.os.scope": "system",
        "io.rancher.os.after": "network",
        "io.rancher.os.before": "console",
        "io.rancher.os.detach": "false",
        "io.rancher.os.reloadconfig": "true",
    }
    assert service["net"] == "host"
    assert service["privileged"] is True
    script_file = next(f for f in document["write_files"] if f.get("container") == "node-bootstrap")
    assert service["command"] == ["sh", script_file["path"]]
    assert "prefix=staging-web\n" in script_file["content"]


def test_ssh_keys_and_no_passwords() -> None:
    document = parsed(spec(ssh_authorized_keys=[KEY, KEY + " ", KEY]))
    assert document["ssh_authorized_keys"] == [KEY]
    assert "password" in document["rancher"]["disable"]
    rc_local = next(f for f in document["write_files"] if f["path"] == "/etc/rc.local")
    assert "PasswordAuthentication no" in rc_local["content"]
    with pytest.raises(ValueError, match="OpenSSH"):
        render_swarm_node(spec(ssh_authorized_keys=["ssh-rsa AAAA\nssh-rsa BBBB"]))
    assert "ssh_authorized_keys" not in parsed(spec(ssh_authorized_keys=[]))


def test_hostname_must_fit() -> None:
    with pytest.raises(ValueError, match="hostname"):
        render_swarm_node(spec(environment="e" * 22, group="g" * 22, engine_labels={
            "docker.environment": "e" * 22, "docker.role": "web"}))  # fmt: skip


def test_oversized_user_data_names_the_group() -> None:
    with pytest.raises(UserDataTooLarge, match="'web'") as raised:
        render_swarm_node(spec(variables={"BIG": incompressible(16_000)}))
    assert raised.value.size > 16_384


# Label values end up in argv through YAML; variable values through YAML and one-line files.
LABEL_TEXT = st.text(st.characters(blacklist_categories=["Cc", "Cs", "Zl", "Zp"]), max_size=40)
VARIABLE_TEXT = st.text(st.characters(blacklist_categories=["Cc", "Cs", "Zl", "Zp"]), max_size=60)
# Keys `docker\.x[a-z0-9]{0,8}` and `[A-Z_][A-Z0-9_]{0,10}`, drawn as plain text: st.from_regex cost a fifth
# of the whole property.
LABEL_KEY = st.text(string.ascii_lowercase + string.digits, max_size=8).map("docker.x".__add__)
VARIABLE_KEY = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_uppercase + "_"),
    st.text(string.ascii_uppercase + string.digits + "_", max_size=10),
)


def _clean(value: str) -> bool:
    return not any(token in value for token in METADATA_TOKENS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    labels=st.dictionaries(LABEL_KEY, LABEL_TEXT.filter(_clean)),
    variables=st.dictionaries(VARIABLE_KEY, VARIABLE_TEXT.filter(_clean)),
)
@example(labels={"docker.xa": "a: b # c", "docker.xb": "'\"ü", "docker.xc": "yes"}, variables={"Y": "n", "N": "1.0"})
@example(labels={"docker.xa": " ", "docker.xb": "-", "docker.xc": ""}, variables={"V": "a # b", "Q": "'\\''"})
def test_values_round_trip_exactly(labels: dict[str, str], variables: dict[str, str]) -> None:
    variables = {k: v for k, v in variables.items() if not k.startswith("AWS_")}
    all_labels = {"docker.environment": "staging", "docker.role": "web", **labels}
    label_args = [f"--label={k}={v}" for k, v in sorted(all_labels.items())]
    text = render_swarm_node(spec(engine_labels=all_labels, variables=variables))
    rancher = parsed_text(text)["rancher"]
    assert rancher.get("environment", {}) == variables
    assert [a for a in rancher["docker"]["extra_args"] if a.startswith("--label=")] == label_args
    assert schema_errors(text) == []
    # PyYAML's pure-Python scanner (independent of libyaml's) reads the same scalars back too; on just these
    # values, as reading the whole user-data that way cost forty times the rest of the example.
    values = {"environment": variables, "extra_args": label_args}
    assert yaml.safe_load(dump_yaml(values)) == values


# --- The checks must be able to fail ---------------------------------------------------------------


def test_schema_errors_catch_what_rancheros_rejects() -> None:
    bad = "#cloud-config\nrancher:\n  docker:\n    extra_args: [--label, a=1, --label, b=2]\n  debug: 'yes'\n"
    problems = schema_errors(bad)
    assert any("rancher.docker.extra_args" in p for p in problems)
    assert any("rancher.debug" in p for p in problems)
    assert schema_errors("#cloud-config \nhostname: x\n") != []
    assert schema_errors("#cloud-config\nrancher:\n  unknown_key: 1\n") != []


def test_duplicates_are_found_anywhere() -> None:
    text = "#cloud-config\nrancher:\n  services:\n    a:\n      volumes: [/x:/x, /x:/x]\n"
    assert duplicate_list_items(text) == ["rancher.services.a.volumes: '/x:/x' appears more than once"]


def test_snippets_and_shellcheck_findings() -> None:
    text = (
        "#cloud-config\n"
        "runcmd:\n- echo $HOME\n"
        "write_files:\n- path: /x.sh\n  content: |\n    #!/bin/bash\n    [[ -n $1 ]] && echo ok\n"
        "- path: /data.txt\n  content: 'not a script'\n"
        "rancher:\n  services:\n    s:\n      entrypoint: [/bin/sh, -c, 'exec foo $$X ${Y}']\n"
        "    t:\n      command: [join, --advertise=$private_ipv4:2375]\n"
    )
    assert shell_snippets(text) == [
        ("write_files /x.sh", "#!/bin/bash\n[[ -n $1 ]] && echo ok\n"),
        ("runcmd[0]", "echo $HOME"),
        ("rancher.services.s.entrypoint", "exec foo $X interpolated"),
    ]
    problems = shellcheck_errors(text)
    assert any(p.startswith("write_files /x.sh:") and "SC3010" in p for p in problems)
    assert any(p.startswith("runcmd[0]:") and "SC2086" in p for p in problems)
    assert any(p.startswith("rancher.services.s.entrypoint:") and "SC2086" in p for p in problems)


@pytest.mark.parametrize("managers", [0, 1, 3])
def test_every_node_runs_the_drain_agent_with_its_group_and_window(managers: int) -> None:
    document = parsed(spec(swarm_manager=bool(managers), managers=managers))
    drain = document["rancher"]["services"]["drain"]
    assert drain["command"] == ["python3", "/opt/swarm-cluster/agents/bootstrap.py", "drain"]
    assert drain["net"] == "host", "instance metadata and the Swarm API on loopback"
    environment = dict(item.split("=", 1) for item in drain["environment"])
    assert environment["DRAIN_GROUP"] == "staging-web"
    assert environment["DRAIN_HOOK"] == "staging-web-drain"
    assert environment["DRAIN_WINDOW_SECONDS"] == "300"
    assert environment["SWARM_AGENT_CONTAINER"] in document["rancher"]["services"]
    assert environment["CONSUL_HTTP_ADDR"] == CONSUL
    if managers:
        assert environment["SWARM_MANAGER_CONTAINER"] in document["rancher"]["services"]
        assert environment["SWARM_MANAGERS"] == str(managers)
        assert environment["SWARM_HOST"] == "tcp://127.0.0.1:4000"
    else:
        assert "SWARM_MANAGERS" not in environment and "SWARM_HOST" not in environment
    assert "/var/run/docker.sock:/var/run/docker.sock" in drain["volumes"]
    assert "/var/lib/swarm-cluster/drain:/var/lib/swarm-cluster/drain" in drain["volumes"]
