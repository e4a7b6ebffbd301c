"""What every RancherOS 1.5 host of the cluster carries, and how its `#cloud-config` is written out.

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

IMDS containment
    IMDSv2 cannot be required (RancherOS reads its user-data with IMDSv1), so node-bootstrap drops
    forwarded traffic to 169.254.169.254/32 in DOCKER-USER before user Docker first starts. Containers
    on bridge or overlay networks reach the network through FORWARD, which dockerd points at
    DOCKER-USER first on every (re)start without ever flushing that chain; a rule in FORWARD itself
    would land below dockerd's `-i docker0 ! -o docker0 -j ACCEPT`. Host-network system services
    (Consul auto-join, registry role credentials) go through OUTPUT and keep working.

Text substitution
    RancherOS replaces `$private_ipv4`, `$public_ipv4`, `$private_ipv6` and `$public_ipv6` anywhere in
    a config file with the datasource's metadata when it loads it (rancher/os config/disk.go). The
    swarm services use that for their advertise address; user-supplied text may not contain them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

HEADER = "#cloud-config"
USER_DATA_LIMIT = 16384  # bytes, before base64 (EC2)
ROS_BASE_IMAGE = "rancher/os-base:v1.5.8"  # preloaded in the v1.5.8 AMI; pulled on other 1.5.x releases
IMDS_ADDRESS = "169.254.169.254"
BOOTSTRAP_SERVICE = "node-bootstrap"
BOOTSTRAP_SCRIPT_PATH = "/usr/local/sbin/node-bootstrap"
METADATA_TOKENS = ("$private_ipv4", "$public_ipv4", "$private_ipv6", "$public_ipv6")
PRIVATE_IPV4 = "$private_ipv4"
# Set by node-bootstrap at boot, or by RancherOS itself: user variables may not shadow them.
RESERVED_VARIABLES = frozenset(("VERSION", "SUFFIX", "REGISTRY_DOMAIN", "EXTRA_CMDLINE", "KERNEL_VERSION", "PATH"))
RESERVED_VARIABLE_PREFIX = "AWS_"
INSTANCE_ID_LENGTH = len("i-0123456789abcdef0")
HOSTNAME_LIMIT = 63

_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_DNS_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ENDPOINT = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*:(?P<port>[0-9]{{1,5}})")
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/-]*(:[0-9]+/[a-z0-9._/-]+)?:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_SSH_KEY = re.compile(r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/]+={0,2}( [^\r\n]*)?")
# Plain scalars that every YAML 1.1 parser (PyYAML, RancherOS's candiedyaml) reads back as this string.
_PLAIN_SAFE = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@+-]*(:[A-Za-z0-9_./@+-]+)*")
_YAML11_WORDS = frozenset(("y", "n", "yes", "no", "true", "false", "on", "off", "null"))


class UserDataTooLarge(ValueError):
    """The rendered user-data does not fit EC2's limit; `what` names the host or node group."""

    def __init__(self, what: str, size: int) -> None:
        super().__init__(
            f"{what}: the user-data is {size} bytes; EC2 accepts at most {USER_DATA_LIMIT} bytes before "
            "base64 encoding. Shorten the variables, labels or SSH keys this host carries."
        )
        self.what = what
        self.size = size


# --- YAML -----------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Quote every string that is not unambiguously a string to YAML 1.1: a wrong type makes RancherOS
    discard the whole user-data, and Go's YAML reads `y`/`n` as booleans where PyYAML does not."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if any(not c.isprintable() for c in value.replace("\n", "")):
        style = '"'  # escapes; PyYAML's single quotes mangle a trailing NEL (U+0085)
    elif "\n" in value:
        style = "|"  # PyYAML falls back to double quotes when a literal block cannot hold the text
    elif _PLAIN_SAFE.fullmatch(value) and value.lower() not in _YAML11_WORDS:
        style = ""
    else:
        style = "'"
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style or None)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(document: Mapping[str, Any]) -> str:
    """YAML that `yaml.safe_load` turns back into exactly `document` (checked, not assumed)."""
    text = yaml.dump(
        dict(document), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 30, default_flow_style=False
    )
    if yaml.safe_load(text) != document:
        raise AssertionError("the YAML dump does not round-trip; refusing to emit it")
    return text


def finish(document: Mapping[str, Any], what: str) -> str:
    """The user-data text: header, YAML, and the EC2 size check naming `what`."""
    text = f"{HEADER}\n{dump_yaml(document)}"
    size = len(text.encode("utf-8"))
    if size > USER_DATA_LIMIT:
        raise UserDataTooLarge(what, size)
    return text


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge mappings; lists concatenate (callers keep them duplicate-free)."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = merge(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            out[key] = [*old, *value]
        else:
            out[key] = value
    return out


# --- Validation of what users and callers pass in -------------------------------------------------


def require_name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be lower-case letters, digits and inner '-'")
    return value


def require_endpoint(value: str, what: str) -> str:
    match = _ENDPOINT.fullmatch(value)
    if not match or not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"{what} {value!r} must be host:port, e.g. consul.staging.example.internal:8500")
    return value


def require_image(value: str, what: str) -> str:
    if not _IMAGE.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be an image reference with a tag, e.g. registry:2.8.3")
    return value


def require_text(value: str, what: str, *, single_line: bool) -> str:
    """Reject text RancherOS would rewrite ($private_ipv4 ...) or that cannot be an argument/value."""
    for token in METADATA_TOKENS:
        if token in value:
            raise ValueError(f"{what} contains {token!r}, which RancherOS replaces with instance metadata")
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character")
    if single_line:
        bad = [c for c in value if unicodedata.category(c) in ("Cc", "Zl", "Zp")]
        if bad:
            raise ValueError(f"{what} contains the control or line-break character {bad[0]!r}")
    return value


def hostname_prefix(environment: str, group: str) -> str:
    prefix = f"{require_name(environment, 'environment')}-{require_name(group, 'group')}"
    longest = len(prefix) + 1 + INSTANCE_ID_LENGTH
    if longest > HOSTNAME_LIMIT:
        raise ValueError(
            f"group {group!r}: hostname {prefix}-<instance-id> can reach {longest} characters; "
            f"the limit is {HOSTNAME_LIMIT}, shorten the environment or group name"
        )
    return prefix


def ssh_keys(keys: Iterable[str]) -> list[str]:
    """Validated keys without duplicates (the schema's uniqueItems), first occurrence kept."""
    unique: list[str] = []
    for key in keys:
        key = key.strip()
        if not _SSH_KEY.fullmatch(key):
            raise ValueError(f"{key[:40]!r}... is not a single-line OpenSSH public key")
        require_text(key, "an SSH public key", single_line=True)
        if key not in unique:
            unique.append(key)
    return unique


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- The pieces every host carries ----------------------------------------------------------------

_BOOTSTRAP_SCRIPT = r"""#!/bin/sh
# node-bootstrap: runs in system-docker on every boot, after `network` and before `console`
# (so before user Docker). Containment first: it needs no network and must never be skipped.
set -eu

prefix=@PREFIX@
imds=http://@IMDS@/latest/meta-data

contain_imds() {
  if ! iptables -w -n -L DOCKER-USER >/dev/null 2>&1; then
    iptables -w -N DOCKER-USER
  fi
  if ! iptables -w -C DOCKER-USER -d @IMDS@/32 -j DROP 2>/dev/null; then
    iptables -w -I DOCKER-USER 1 -d @IMDS@/32 -j DROP
  fi
}

fetch() {
  if command -v wget >/dev/null 2>&1; then
    wget -q -T 2 -O - "$imds/$1"
  else
    curl -fsS -m 2 "$imds/$1"
  fi
}

# DHCP may still be running when this starts: retry for about two minutes.
metadata() {
  tries=0
  while [ "$tries" -lt 40 ]; do
    if value=$(fetch "$1" 2>/dev/null) && [ -n "$value" ]; then
      printf '%s\n' "$value"
      return 0
    fi
    tries=$((tries + 1))
    sleep 3
  done
  echo "node-bootstrap: no answer for meta-data/$1" >&2
  return 1
}

fail() {
  echo "node-bootstrap: unexpected $1 from the metadata service" >&2
  exit 1
}

contain_imds

instance_id=$(metadata instance-id)
local_ipv4=$(metadata local-ipv4)
zone=$(metadata placement/availability-zone)
region=$(metadata placement/region)
instance_type=$(metadata instance-type)

case "$instance_id" in
  i-*[!0-9a-f]*) fail instance-id ;;
  i-?*) ;;
  *) fail instance-id ;;
esac
case "$local_ipv4" in ''|*[!0-9.]*) fail local-ipv4 ;; esac
case "$zone" in ''|*[!a-z0-9-]*) fail availability-zone ;; esac
case "$region" in ''|*[!a-z0-9-]*) fail region ;; esac
case "$instance_type" in ''|*[!a-z0-9.-]*) fail instance-type ;; esac

ros config set rancher.environment.AWS_INSTANCE_ID "$instance_id"
ros config set rancher.environment.AWS_LOCAL_IPV4 "$local_ipv4"
ros config set rancher.environment.AWS_AVAILABILITY_ZONE "$zone"
ros config set rancher.environment.AWS_DEFAULT_REGION "$region"
ros config set rancher.environment.AWS_INSTANCE_TYPE "$instance_type"

# The config key keeps the name through later config loads and stops DHCP renaming the host.
name="$prefix-$instance_id"
hostname "$name"
ros config set hostname "$name"
if ! grep -q "[[:space:]]$name\$" /etc/hosts; then
  printf '127.0.1.1 %s\n' "$name" >> /etc/hosts
fi
echo "node-bootstrap: $name ($local_ipv4, $zone, $instance_type)"
"""

# The console runs /etc/rc.local after writing files and before it starts sshd. sshd uses the first
# value it reads for an option, so ours go first; only options every OpenSSH 7/8 accepts.
_SSHD_HARDENING = r"""#!/bin/sh
# No password or keyboard-interactive logins: SSH keys (or SSM) only.
set -eu
config=/etc/ssh/sshd_config
[ -f "$config" ] || exit 0
others=$(grep -v -i -E '^[[:space:]]*(PasswordAuthentication|ChallengeResponseAuthentication)[[:space:]]' "$config" || true)
printf 'PasswordAuthentication no\nChallengeResponseAuthentication no\n%s\n' "$others" > "$config"
"""


def bootstrap_script(prefix: str) -> str:
    return _BOOTSTRAP_SCRIPT.replace("@PREFIX@", prefix).replace("@IMDS@", IMDS_ADDRESS)


def system_service(image: str, **options: Any) -> dict[str, Any]:
    """A system-docker service; `labels` in options are added to the scope label."""
    labels = {"io.rancher.os.scope": "system", **options.pop("labels", {})}
    return {"image": image, "labels": labels, **options}


def host_document(environment: str, group: str, authorized_keys: Sequence[str]) -> dict[str, Any]:
    """SSH keys, no password logins, node-bootstrap (identity, metadata, IMDS containment)."""
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
