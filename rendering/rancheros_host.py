"""What every RancherOS 1.5 host of the cluster carries: SSH keys, no password logins, node-bootstrap.

Node identity and AWS metadata (why not `amazon-metadata`)
    rancher/os-services' `amazon-metadata -m` copies the instance role's credentials into
    `rancher.environment` (persisted in /var/lib/rancher/conf, stale after a few hours, handed to any
    service that asks for `AWS_*`), writes its YAML with unquoted `echo`s (a second security group in
    the `security-groups` answer makes `ros config merge` reject everything), and has to be fetched
    from GitHub and Docker Hub at boot. Its tag features need `ec2:DescribeTags` and write the removed
    `rancher.docker.args`. We need neither: labels and variables are known when the user-data is
    rendered. So every host runs `node-bootstrap`, a one-shot system service ordered after `network`
    and before `console` (user Docker starts after `console`), on the preloaded `os-base` image. It
    reads only instance-id, local-ipv4, placement/availability-zone, placement/region and instance-type
    (IMDSv1, like RancherOS itself), stores them as AWS_* in `rancher.environment` with `ros config
    set`, and names the host `<environment>-<group>-<instance-id>` (kernel, `hostname` config key,
    /etc/hosts). `io.rancher.os.reloadconfig` makes later services see the new values. No IAM
    permission is needed.

The script reaches the container through `write_files` with `container: node-bootstrap`: os-base's
entrypoint (`ros entrypoint`) writes those files before it execs the command, so nothing in the
service definition contains `$` and docker-compose interpolation cannot alter it. Plain `write_files`
are written by the console, i.e. too late for anything ordered before it.

Container containment
    IMDSv2 cannot be required (RancherOS reads its user-data with IMDSv1), and Swarm engines listen on
    tcp://0.0.0.0:2375: a container reaching its own host is filtered by no security group, and its
    forwarded traffic leaves with its host's security groups (on a manager: every engine, Consul). So
    before user Docker first starts, node-bootstrap drops container traffic to the metadata service
    and to the cluster control ports:
      - DOCKER-USER: `-d 169.254.169.254/32 -j DROP`, and `-o eth0 -p tcp --dport P -j DROP` for P in
        2375, 2376 (engines), 4000 (Swarm manager) and 8500 (Consul): forwarded traffic to other hosts.
      - INPUT: `-i I -p tcp --dport P -j DROP` for I in docker0, br-+ (user-defined bridges) and
        docker_gwbridge (overlay networks' way out), P in 2375, 2376 and 4000: a container reaching
        its own host's gateway or eth0 address is local delivery, which never passes FORWARD.
    Containers on bridge or overlay networks reach the network through FORWARD, which dockerd points at
    DOCKER-USER first on every (re)start without ever flushing that chain; a rule in FORWARD itself
    would land below dockerd's `-i docker0 ! -o docker0 -j ACCEPT`. dockerd never touches INPUT. Each
    rule is inserted at the top of its chain only if `iptables -C` does not find it, so reruns (every
    boot, or by hand) add nothing. `-o eth0` keeps the port rules to traffic leaving the host: containers
    may still use those ports among themselves and publish them (both leave FORWARD through a bridge;
    overlay traffic between hosts is VXLAN the host itself sends).
    Host-network services (engines, Swarm agent and manager, Consul, registry role credentials) go
    through OUTPUT, and INPUT from eth0, and keep working; so would `--network host` containers, which
    no iptables rule can tell from the host.

Text substitution
    RancherOS replaces `$private_ipv4`, `$public_ipv4`, `$private_ipv6` and `$public_ipv6` anywhere in
    a config file with the datasource's metadata when it loads it (rancher/os config/disk.go). The
    swarm services use that for their advertise address; user-supplied text may not contain them
    (rendering.inputs.require_text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from rendering.inputs import hostname_prefix, ssh_keys

ROS_BASE_IMAGE = "rancher/os-base:v1.5.8"  # preloaded in the v1.5.8 AMI; pulled on other 1.5.x releases
IMDS_ADDRESS = "169.254.169.254"
BOOTSTRAP_SERVICE = "node-bootstrap"
BOOTSTRAP_SCRIPT_PATH = "/usr/local/sbin/node-bootstrap"
PRIVATE_IPV4 = "$private_ipv4"
# Set by node-bootstrap at boot, or by RancherOS itself: user variables may not shadow them.
RESERVED_VARIABLES = frozenset(("VERSION", "SUFFIX", "REGISTRY_DOMAIN", "EXTRA_CMDLINE", "KERNEL_VERSION", "PATH"))
RESERVED_VARIABLE_PREFIX = "AWS_"

_SCRIPTS = files(__package__) / "scripts"
_BOOTSTRAP_SCRIPT = (_SCRIPTS / "node-bootstrap.sh").read_text(encoding="utf-8")
# The console runs /etc/rc.local after writing files and before it starts sshd. sshd uses the first
# value it reads for an option, so ours go first; only options every OpenSSH 7/8 accepts.
_SSHD_HARDENING = (_SCRIPTS / "sshd-hardening.sh").read_text(encoding="utf-8")


def bootstrap_script(prefix: str) -> str:
    return _BOOTSTRAP_SCRIPT.replace("@PREFIX@", prefix).replace("@IMDS@", IMDS_ADDRESS)


def system_service(image: str, **options: Any) -> dict[str, Any]:
    """A system-docker service; `labels` in options are added to the scope label."""
    labels = {"io.rancher.os.scope": "system", **options.pop("labels", {})}
    return {"image": image, "labels": labels, **options}


def host_document(environment: str, group: str, authorized_keys: Sequence[str]) -> dict[str, Any]:
    """SSH keys, no password logins, node-bootstrap (identity, metadata, container containment)."""
    prefix = hostname_prefix(environment, group)
    document: dict[str, Any] = {}
    keys = ssh_keys(authorized_keys)
    if keys:
        document["ssh_authorized_keys"] = keys
    document["write_files"] = [
        {
            "container": BOOTSTRAP_SERVICE,
            "path": BOOTSTRAP_SCRIPT_PATH,
            "permissions": "0755",
            "owner": "root",
            "content": bootstrap_script(prefix),
        },
        {"path": "/etc/rc.local", "permissions": "0755", "owner": "root", "content": _SSHD_HARDENING},
    ]
    document["rancher"] = {
        # `password` ignores a rancher.password kernel parameter; `autologin` the serial-console one.
        "disable": ["password", "autologin"],
        "services": {
            BOOTSTRAP_SERVICE: system_service(
                ROS_BASE_IMAGE,
                command=["sh", BOOTSTRAP_SCRIPT_PATH],
                labels={
                    "io.rancher.os.after": "network",
                    "io.rancher.os.before": "console",
                    "io.rancher.os.detach": "false",
                    "io.rancher.os.reloadconfig": "true",
                },
                net="host",
                uts="host",
                privileged=True,
                volumes_from=["command-volumes", "system-volumes"],
                volumes=["/usr/bin/iptables:/sbin/iptables:ro"],
            )
        },
    }
    return document


@dataclass(frozen=True)
class ConfigFile:
    host_dir: str  # written by the console, mounted read-only into the service
    container_dir: str
    name: str
    text: str
    mode: str


def configured_service(
    name: str, image: str, config: ConfigFile, command: str, volumes: Sequence[str] = (), **options: Any
) -> dict[str, Any]:
    """A host's long-running service and the config file it reads, as user-data to merge into the host's.

    The console writes the file, and system services may start before it, so the service waits for the
    file before it execs `command`, in which `{file}` stands for the file's path in the container.
    """
    path = f"{config.container_dir}/{config.name}"
    start = f"until [ -s {path} ]; do echo waiting for {path}; sleep 2; done; exec {command.format(file=path)}"
    written = {"path": f"{config.host_dir}/{config.name}", "permissions": config.mode, "owner": "root"}
    return {
        "write_files": [{**written, "content": config.text}],
        "rancher": {
            "services": {
                name: system_service(
                    image,
                    entrypoint=["/bin/sh", "-c", start],
                    labels={"io.rancher.os.after": "console"},
                    net="host",
                    **options,
                    restart="always",
                    volumes=[f"{config.host_dir}:{config.container_dir}:ro", *volumes],
                )
            }
        },
    }
