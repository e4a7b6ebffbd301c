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
    permission is needed. Only when every value is valid does it store the advertise addresses
    services read through `environment:` (`<service>/<VARIABLE>` keys, which RancherOS hands to that
    service only, as VARIABLE) and write IDENTITY_FILE, which node-health waits for. Failures go to
    /dev/console, which EC2 keeps.

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
    a config file with the datasource's metadata when it loads it (rancher/os config/disk.go), and with
    `<nil>` when the metadata has no address. Nothing rendered uses them (advertise addresses come from
    node-bootstrap's validated value instead); user-supplied text may not contain them
    (rendering.inputs.require_text).

Root disk
    RancherOS grows the root filesystem only on `rancher.resize_device`, which it guesses from a list of
    instance families that misses every sixth-generation type; it is set from stack_config.instance_types.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from importlib.resources import files
from typing import Any

from rendering.inputs import hostname_prefix, ssh_keys
from stack_config.instance_types import root_disk

ROS_BASE_IMAGE = "rancher/os-base:v1.5.8"  # preloaded in the v1.5.8 AMI; pulled on other 1.5.x releases
PRELOADED_IMAGE_PREFIX = "rancher/os-"  # the only images system-docker (17.06, no OCI indexes) may run
SCOPE_LABEL = "io.rancher.os.scope"
IMDS_ADDRESS = "169.254.169.254"
BOOTSTRAP_SERVICE = "node-bootstrap"
BOOTSTRAP_SCRIPT_PATH = "/usr/local/sbin/node-bootstrap"
IDENTITY_FILE = "/run/swarm-cluster/identity"  # /run is a fresh tmpfs every boot, shared by system services
# Set by node-bootstrap at boot, or by RancherOS itself: user variables may not shadow them.
RESERVED_VARIABLES = frozenset(
    ("VERSION", "SUFFIX", "REGISTRY_DOMAIN", "EXTRA_CMDLINE", "KERNEL_VERSION", "PATH", "SWARM_ADVERTISE")
)
RESERVED_VARIABLE_PREFIX = "AWS_"

_SCRIPTS = files(__package__) / "scripts"


def script(name: str, **values: str) -> str:
    """The shell script `rendering/scripts/<name>` with each `@KEY@` replaced by values[KEY] (`@SAY@` by the
    `say` function), without comment and blank lines: user-data has 16 KB for everything a host needs."""
    text = _code(name)
    for key, value in {"SAY": _code("say.sh", shebang=False).rstrip("\n"), **values}.items():
        text = text.replace(f"@{key}@", value)
    return text


@functools.cache  # every host renders the same few scripts
def _code(name: str, *, shebang: bool = True) -> str:
    lines = (_SCRIPTS / name).read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines[1:] if line.strip() and not line.lstrip().startswith("#")]
    return "\n".join([lines[0], *kept] if shebang else kept) + "\n"


def _bootstrap_script(prefix: str, advertise: Mapping[str, int]) -> str:
    """node-bootstrap; `advertise` maps `<service>/<VARIABLE>` to the port advertised with the node's IP."""
    lines = "\n".join(f"{key} {port}" for key, port in sorted(advertise.items()))
    return script("node-bootstrap.sh", PREFIX=prefix, IMDS=IMDS_ADDRESS, IDENTITY=IDENTITY_FILE, ADVERTISE=lines)


def system_service(image: str, **options: Any) -> dict[str, Any]:
    """A system-docker service; `labels` in options are added to the scope label."""
    labels = {SCOPE_LABEL: "system", **options.pop("labels", {})}
    return {"image": image, "labels": labels, **options}


def host_document(
    environment: str,
    group: str,
    authorized_keys: Sequence[str],
    instance_type: str,
    advertise: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """SSH keys, no password logins, root disk growth, node-bootstrap (identity, metadata, containment)."""
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
            "content": _bootstrap_script(prefix, advertise or {}),
        },
        # The console runs /etc/rc.local after writing files and before it starts sshd. sshd uses the first
        # value it reads for an option, so ours go first; only options every OpenSSH 7/8 accepts.
        {"path": "/etc/rc.local", "permissions": "0755", "owner": "root", "content": script("sshd-hardening.sh")},
    ]
    document["rancher"] = {
        # `password` ignores a rancher.password kernel parameter; `autologin` the serial-console one.
        "disable": ["password", "autologin"],
        "resize_device": root_disk(instance_type),
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
