"""The cluster's two secrets stay out of user-data: SSM SecureString parameters, each readable by one role, fetched
at boot by a one-shot step (executed here as RancherOS runs it, against the fakes) that the service waits for."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from node_agents.aws import SSM, Aws, AwsError
from node_agents.image import AGENT_IMAGE
from offline.fake_cloud import ACCOUNT_ID
from offline.stack_files import SECRET_PLACEHOLDER, stack_config_map
from rendering.agents import BOOTSTRAP, agents_archive
from rendering.consul_server import render_consul_server
from rendering.host_secret import SECRETS_DIR, SECRETS_VOLUME
from rendering.registry import HttpSecret, render_registry_host
from rendering.yaml_text import decode_user_data
from tests.cloud_config_checks import parsed
from tests.conftest import STACKS, recorded
from tests.fakes.agent_process import agent_env
from tests.fakes.aws import FakeAws
from tests.fakes.imds import FakeImds
from tests.sandbox import CLOCK_START, Sandbox, require_sandbox
from tests.test_node_services_execution import DOCKER
from tests.test_rendering_consul import AGENTS
from tests.test_rendering_consul import spec as consul_spec
from tests.test_rendering_registry import spec as registry_spec

READERS = {"consul": "consul-gossip-key", "registry": "registry-http-secret"}  # role -> the one secret it reads
BUCKET = "example-staging-docker-registry"
GOSSIP_PARAMETER = "/swarm-cluster/staging/consul-gossip-key"
REGISTRY_PARAMETER = "/swarm-cluster/staging/registry-http-secret"
GOSSIP_KEY = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
# What SecretText allows, with everything a shell could misread.
HTTP_SECRET = """s3cr3t 'single' "double" $HOME `id` \\back;#"""


def _config(stack: str, key: str) -> Any:
    return json.loads(stack_config_map(stack)[0][f"swarm-cluster:{key}"])


def _templates(stack: str) -> dict[str, dict[str, Any]]:
    run = recorded(stack)
    return {
        t.name: parsed(decode_user_data(t.inputs["userData"]))
        for t in run.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    }


# -- the whole program, both stacks ----------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_no_user_data_holds_a_secret(stack: str) -> None:
    run = recorded(stack)
    values = {p.inputs["value"] for p in run.of_type("aws:ssm/parameter:Parameter")}
    assert values == {SECRET_PLACEHOLDER}, "the offline plan's stand-in for both secrets, searched for below"
    for template in run.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        text = decode_user_data(template.inputs["userData"])
        assert SECRET_PLACEHOLDER not in text, template.name
        assert template.secret_inputs == (), f"{template.name}: nothing in it needs encrypting"


@pytest.mark.parametrize("stack", STACKS)
def test_each_secret_is_a_secure_string_under_the_environments_path(stack: str) -> None:
    run = recorded(stack)
    parameters = {p.inputs["name"]: p for p in run.of_type("aws:ssm/parameter:Parameter")}
    secrets = ["consul-gossip-key"] + (["registry-http-secret"] if stack == "production" else [])
    assert sorted(parameters) == [f"/swarm-cluster/{stack}/{secret}" for secret in secrets]
    components = {r.urn: r for r in run.resources if r.type == "swarmcluster:secrets:SecretParameter"}
    for parameter in parameters.values():
        assert parameter.inputs["type"] == "SecureString" and parameter.inputs["tier"] == "Standard"
        assert parameter.inputs.get("keyId") == _config(stack, "rancheros").get("kmsKeyArn")
        assert parameter.inputs["tags"] == _config(stack, "tags")
        assert parameter.secret_inputs == ("value",), "encrypted in Pulumi's state"
        assert parameter.parent in components


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_reading_role_may_get_its_parameter_and_decrypt_it_through_ssm(stack: str) -> None:
    run = recorded(stack)
    arns = {p.inputs["name"]: p.outputs["arn"] for p in run.of_type("aws:ssm/parameter:Parameter")}
    key = _config(stack, "rancheros").get("kmsKeyArn")
    region = stack_config_map(stack)[0]["aws:region"]
    for policy in run.of_type("aws:iam/rolePolicy:RolePolicy"):
        statements = json.loads(policy.inputs["policy"])["Statement"]
        granted = [s for s in statements if "ssm" in json.dumps(s)]
        role = policy.name.removeprefix(f"{stack}-cluster-").removesuffix("-policy")
        name = f"/swarm-cluster/{stack}/{READERS.get(role)}"
        expected = []
        if name in arns:
            sid = "".join(word.capitalize() for word in READERS[role].split("-"))
            expected.append(
                {"Sid": f"Read{sid}", "Effect": "Allow", "Action": "ssm:GetParameter", "Resource": arns[name]}
            )
            if key:
                condition = {
                    "kms:ViaService": f"ssm.{region}.amazonaws.com",
                    "kms:EncryptionContext:PARAMETER_ARN": arns[name],
                }
                decrypt = {"Action": "kms:Decrypt", "Resource": key, "Condition": {"StringEquals": condition}}
                expected.append({"Sid": f"Decrypt{sid}", "Effect": "Allow", **decrypt})
        assert granted == expected, policy.name
        fetches_agents = any(s.get("Sid") == "FetchNodeAgents" for s in statements)
        assert fetches_agents is (role != "registry" or name in arns), f"{policy.name}: agents only where they run"
    assert all(arn.startswith(f"arn:aws:ssm:{region}:{ACCOUNT_ID}:parameter/swarm-cluster/") for arn in arns.values())


@pytest.mark.parametrize("stack", STACKS)
def test_user_data_names_the_parameter_and_runs_the_step_that_fetches_it(stack: str) -> None:
    templates = _templates(stack)
    for role, secret in READERS.items():
        services = templates[f"{stack}-cluster-{role}-lt"]["rancher"]["services"]
        if role == "registry" and stack == "staging":  # one replica, no shared secret
            assert secret not in services and not any(s["image"] == AGENT_IMAGE for s in services.values())
            continue
        command = services[secret]["command"]
        assert command[:3] == ["python3", BOOTSTRAP, "secret_file"]
        assert command[command.index("--parameter") + 1] == f"/swarm-cluster/{stack}/{secret}"
        assert services[secret]["restart"] == "on-failure"


# -- the step, executed as RancherOS runs it -------------------------------------------------------


def _step(document: dict[str, Any], name: str, aws: FakeAws, imds: FakeImds, tmp_path: Path, output: Path) -> Any:
    """Run service `name` of `document` as a process: the bootstrap from write_files fetches the agents' archive
    from the fake S3 and runs it; only --output is moved into the test's folder."""
    content = agents_archive()
    key = f"node-agents/{hashlib.sha256(content).hexdigest()}.zip"
    aws.put(BUCKET, key, content)
    [bootstrap] = [f for f in document["write_files"] if f["path"] == BOOTSTRAP]
    script = tmp_path / "bootstrap.py"
    script.write_text(bootstrap["content"])
    (tmp_path / "archive").mkdir(exist_ok=True)
    service = document["rancher"]["services"][name]
    environment = dict(item.split("=", 1) for item in service["environment"])
    _, _, *command = service["command"]
    command[command.index("--output") + 1] = str(output)
    env = agent_env(imds.url, AWS_ENDPOINT_URL=aws.url, AWS_REGION=environment["AWS_REGION"], AGENT_TIME_SCALE="0.001")
    env |= {"AGENTS_URL": f"{aws.url}/{BUCKET}/{key}", "AGENTS_ARCHIVE_DIR": str(tmp_path / "archive")}
    del env["PYTHONPATH"]  # only the fetched archive provides node_agents
    return subprocess.run(
        [sys.executable, str(script), *command], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def _registry_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(
        render_registry_host(registry_spec(http_secret=HttpSecret(REGISTRY_PARAMETER, AGENTS)))
    )
    return document


def test_the_gossip_key_step_writes_the_file_the_consul_server_waits_for(tmp_path: Path) -> None:
    document = yaml.safe_load(render_consul_server(consul_spec()))
    output = tmp_path / "secrets" / "consul-gossip-key"
    with FakeAws(buckets=[BUCKET]) as aws, FakeImds(role="consul-server") as imds:
        aws.put_parameter(GOSSIP_PARAMETER, GOSSIP_KEY)
        result = _step(document, "consul-gossip-key", aws, imds, tmp_path, output)
        assert result.returncode == 0, result.stdout + result.stderr
        assert aws.violations == []
        assert aws.calls_of("GetParameter") == [{"Name": GOSSIP_PARAMETER, "WithDecryption": True}]
    assert json.loads(output.read_text()) == {"encrypt": GOSSIP_KEY}
    assert output.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in output.parent.iterdir()] == [output.name], "no temporary file left"
    assert f"secret-file: wrote {output} from SSM parameter {GOSSIP_PARAMETER}" in result.stdout
    services = document["rancher"]["services"]
    assert f"{SECRETS_DIR}:{SECRETS_DIR}" in services["consul-gossip-key"]["volumes"]
    assert SECRETS_VOLUME in services["consul-server"]["volumes"]
    assert f"[ -s {SECRETS_DIR}/consul-gossip-key ]" in services["consul-server"]["entrypoint"][-1]


@pytest.mark.parametrize("refusal", ["ParameterNotFound", "AccessDeniedException"])
def test_a_refused_fetch_exits_non_zero_says_why_and_writes_nothing(tmp_path: Path, refusal: str) -> None:
    output = tmp_path / "secrets" / "registry-http-secret"
    with FakeAws(buckets=[BUCKET]) as aws, FakeImds(role="registry") as imds:
        if refusal == "AccessDeniedException":
            aws.put_parameter(REGISTRY_PARAMETER, HTTP_SECRET)
            aws.fail(refusal, action="GetParameter", times=None, message="not authorized to perform: ssm:GetParameter")
        result = _step(_registry_document(), "registry-http-secret", aws, imds, tmp_path, output)
        assert aws.violations == []
        assert len(aws.calls_of("GetParameter")) == 1, "AWS's refusal is not retried; Docker restarts the step"
    assert result.returncode == 1
    line = f"secret-file: FAILED to read SSM parameter {REGISTRY_PARAMETER}: ssm GetParameter: HTTP 400 {refusal}"
    assert line in result.stdout and f"{output} not written" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not output.parent.exists() or list(output.parent.iterdir()) == []


def test_throttling_is_retried_until_the_secret_is_written(tmp_path: Path) -> None:
    output = tmp_path / "secrets" / "registry-http-secret"
    with FakeAws(buckets=[BUCKET]) as aws, FakeImds(role="registry") as imds:
        aws.put_parameter(REGISTRY_PARAMETER, HTTP_SECRET)
        aws.throttle(2, action="GetParameter")
        result = _step(_registry_document(), "registry-http-secret", aws, imds, tmp_path, output)
        assert len(aws.calls_of("GetParameter")) == 3
    assert result.returncode == 0, result.stdout + result.stderr
    assert output.read_text() == HTTP_SECRET + "\n"


def test_a_multi_line_value_is_refused_for_a_one_line_file(tmp_path: Path) -> None:
    output = tmp_path / "secrets" / "registry-http-secret"
    with FakeAws(buckets=[BUCKET]) as aws, FakeImds(role="registry") as imds:
        aws.put_parameter(REGISTRY_PARAMETER, "first\nsecond")
        result = _step(_registry_document(), "registry-http-secret", aws, imds, tmp_path, output)
    assert result.returncode == 1
    assert "the value has a line break" in result.stdout and not output.exists()


def test_the_fake_checks_ssm_calls_against_botocores_model(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeAws() as aws:
        for name, value in aws.env().items():
            monkeypatch.setenv(name, value)
        with pytest.raises(AwsError) as refused:
            Aws(agent="test").json_call(SSM, "GetParameter", {"Name": GOSSIP_PARAMETER, "Decrypt": True})
    assert refused.value.code == "ValidationException"
    assert aws.violations and "Decrypt" in aws.violations[0]


# -- the services that read the files, under busybox as in their images ----------------------------


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    require_sandbox()
    return Sandbox(tmp_path / "box")


def _entrypoint(document: dict[str, Any], service: str, config_dir: str) -> str:
    """The service's start script, its config directory's mount point moved under /run (the sandbox's tmpfs)."""
    script: str = document["rancher"]["services"][service]["entrypoint"][-1]
    return script.replace(config_dir, "/run/config")


def test_the_registry_serves_with_the_secret_the_step_wrote(box: Sandbox, tmp_path: Path) -> None:
    document = _registry_document()
    output = box.root / "run" / SECRETS_DIR.removeprefix("/run/") / "registry-http-secret"
    with FakeAws(buckets=[BUCKET]) as aws, FakeImds(role="registry") as imds:
        aws.put_parameter(REGISTRY_PARAMETER, HTTP_SECRET)
        assert _step(document, "registry-http-secret", aws, imds, tmp_path, output).returncode == 0
    (box.root / "run" / "config").mkdir()
    (box.root / "run" / "config" / "config.yml").write_text("version: 0.1\n")
    box.stub(
        "registry", 'printf "%s\\n" "$REGISTRY_HTTP_SECRET" >"$SANDBOX/served"; printf "%s\\n" "$*" >"$SANDBOX/args"'
    )
    result = box.run(_entrypoint(document, "docker-registry", "/etc/docker/registry"))
    assert result.returncode == 0, result.stderr
    assert box.read("served") == HTTP_SECRET + "\n", "exported unchanged: read -r, no expansion"
    assert box.read("args") == "serve /run/config/config.yml\n"


def test_consul_waits_for_its_key_then_starts_with_it_as_its_own_user(box: Sandbox) -> None:
    document = yaml.safe_load(render_consul_server(consul_spec()))
    (box.root / "run" / "config").mkdir()
    (box.root / "run" / "config" / "server.json").write_text("{}\n")
    (box.root / "key").write_text(json.dumps({"encrypt": GOSSIP_KEY}) + "\n")
    # The step writes the key while the server waits: at its first sleep.
    box.stub("sleep", f'mkdir -p {SECRETS_DIR} && cp "$SANDBOX/key" {SECRETS_DIR}/consul-gossip-key')
    box.stub("install", 'printf "%s\\n" "$*" >>"$SANDBOX/calls.install"')
    box.stub("docker-entrypoint.sh", 'printf "%s\\n" "$*" >>"$SANDBOX/calls.entrypoint"')
    result = box.run(_entrypoint(document, "consul-server", "/etc/consul.d"))
    assert result.returncode == 0, result.stderr
    assert f"waiting for /run/config/server.json {SECRETS_DIR}/consul-gossip-key" in result.stdout
    assert result.stdout.count("waiting for") == 1, "it started as soon as the key was there"
    assert box.calls("install") == [
        f"-m 0600 -o consul -g consul {SECRETS_DIR}/consul-gossip-key /consul/config/gossip-key.json"
    ]
    assert box.calls("entrypoint") == ["agent -config-file=/run/config/server.json"]


def _node_health(box: Sandbox, gossip_step: str) -> subprocess.CompletedProcess[str]:
    document = yaml.safe_load(render_consul_server(consul_spec()))
    [script] = [f["content"] for f in document["write_files"] if f.get("container") == "node-health"]
    box.stub("docker", DOCKER)
    containers = box.root / "containers"
    containers.mkdir()
    for name in ("consul-server", "consul-snapshot"):
        (containers / name).write_text("true 0\n")
    (containers / "consul-gossip-key").write_text(f"{gossip_step}\n")
    (box.root / "run" / "swarm-cluster").mkdir(parents=True)
    (box.root / "run" / "swarm-cluster" / "identity").write_text("staging-consul-i-0123456789abcdef0 10.20.1.5\n")
    return box.run(script)


def test_node_health_wants_the_one_shot_step_exited_zero_not_running(box: Sandbox) -> None:
    result = _node_health(box, "exited 0 2")
    assert result.returncode == 0, result.stderr
    assert box.calls("poweroff") == []


@pytest.mark.parametrize("state", ["exited 1 3", "created 0 0"], ids=["failed", "never-started"])
def test_node_health_names_a_step_that_has_not_succeeded_and_replaces_the_node(box: Sandbox, state: str) -> None:
    result = _node_health(box, state)
    assert result.returncode == 1
    assert box.calls("poweroff") == [""]
    reason = f"consul-gossip-key ({AGENT_IMAGE}) has not succeeded: {state} (see docker logs consul-gossip-key)"
    assert f"node-health: UNHEALTHY: {reason}" in box.read("console")
    assert int(box.read("clock")) > CLOCK_START


def test_node_images_pulls_a_one_shot_steps_image_like_any_other(box: Sandbox) -> None:
    document = yaml.safe_load(render_consul_server(consul_spec()))
    [script] = [f["content"] for f in document["write_files"] if f.get("container") == "node-images"]
    box.stub("docker", DOCKER)
    result = box.run(script)
    assert result.returncode == 0, result.stderr
    pulls = sorted(c for c in box.calls("docker") if c.startswith("pull "))
    assert pulls == sorted({f"pull {AGENT_IMAGE}", "pull hashicorp/consul:1.20.2"})
