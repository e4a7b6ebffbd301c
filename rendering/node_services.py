"""The containers a node needs, run by user Docker, and what makes them come up or the node go away.

Why user Docker
    RancherOS's system-docker is a 17.06 fork that cannot pull OCI image indexes, which Docker Official
    Images (registry, consul, python, ...) now publish. So only images preloaded in the AMI (`rancher/os-*`)
    may be system services; every other service is a RancherOS service without the system scope label,
    which RancherOS creates through user Docker 19.03.15 after `docker` has started. That includes the
    classic Swarm agent and manager: `swarm:1.2.9` is not preloaded, and as user containers they are
    visible to `docker ps` on the node like the rest of its workload; they run with host networking and
    `restart: always`, so restarting user Docker restarts them with the engine.

One mechanism for every such service (`user_service`, `configured_service`, then `host_user_data`)
    - `node-images` (system service, preloaded os-base image, after `docker`, not detached): pulls each
      user service's image with bounded retries and exponential backoff. Every user service is ordered
      after it, so RancherOS finds the image present; RancherOS itself pulls once and never retries.
    - `node-health` (system service, from node-bootstrap on, detached): waits until node-bootstrap has
      validated the node's identity and every user service runs without restarting; past the deadline it
      writes why to the console and powers off. The launch template's shutdown behaviour is `terminate`.
    Both write their progress to /dev/console, which EC2 keeps (GetConsoleOutput, "Get system log").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rendering.rancheros_host import (
    BOOTSTRAP_SERVICE,
    IDENTITY_FILE,
    PRELOADED_IMAGE_PREFIX,
    ROS_BASE_IMAGE,
    SCOPE_LABEL,
    script,
    system_service,
)
from rendering.yaml_text import finish, merge

IMAGES_SERVICE = "node-images"
HEALTH_SERVICE = "node-health"
# Retries: 6 attempts per image, waiting 15, 30, 60, 120 and 240 s between them (7.75 min of waiting).
PULL_ATTEMPTS = 6
PULL_FIRST_DELAY_SECONDS = 15
DOCKER_WAIT_SECONDS = 300
# Deadline: 25 min from node-bootstrap to healthy (a normal boot takes 2-4 min; the pulls alone may wait
# 7.75 min per image). Against the 5 min health check grace period of the groups this bounds a broken
# image, registry or instance type to one replacement per 25 min per instance.
HEALTH_DEADLINE_SECONDS = 1500
HEALTH_INTERVAL_SECONDS = 15
AFTER = "io.rancher.os.after"
# Docker restarts the container when it exits non-zero (after 0.1 s, doubling up to a minute), never after it
# succeeded. Every boot runs it again: RancherOS starts each service's container that is not running
# (libcompose docker/container.go, Container.Up), exited or not.
ONE_SHOT_RESTART = "on-failure"


def user_service(name: str, image: str, *, one_shot: bool = False, **options: Any) -> dict[str, Any]:
    """User-data that runs `image` as the user-Docker RancherOS service `name`, restarted whenever it exits;
    a `one_shot` service only when it fails (node-health then wants it exited 0, not running).

    `labels` in options are added; `io.rancher.os.after` there lists more services to start after.
    """
    labels = dict(options.pop("labels", {}))
    after = [IMAGES_SERVICE, *filter(None, labels.pop(AFTER, "").split(","))]
    restart = ONE_SHOT_RESTART if one_shot else "always"
    service = {"image": image, "labels": {AFTER: ",".join(after), **labels}, "restart": restart, **options}
    return {"rancher": {"services": {name: service}}}


@dataclass(frozen=True)
class ConfigFile:
    host_dir: str  # written by the console into a host directory shared with user Docker (/opt)
    container_dir: str
    name: str
    text: str
    mode: str


def configured_service(
    name: str,
    image: str,
    config: ConfigFile,
    command: str,
    volumes: Sequence[str] = (),
    *,
    waits_for: Sequence[str] = (),
    prepare: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """A long-running user service and the config file it reads, as user-data to merge into the host's.

    The console writes the file while user services may already start, so the service waits for the
    file (and the container paths `waits_for`, files that other services write) before it execs `command`,
    in which `{file}` stands for the file's path in the container. `prepare` runs just before; if it fails,
    the container exits and is restarted.
    """
    path = f"{config.container_dir}/{config.name}"
    files = [path, *waits_for]
    ready = " && ".join(f"[ -s {file} ]" for file in files)
    run = f"exec {command.format(file=path)}"
    start = f"until {ready}; do echo waiting for {' '.join(files)}; sleep 2; done; "
    start += f"{prepare} && {run}" if prepare else run
    written = {"path": f"{config.host_dir}/{config.name}", "permissions": config.mode, "owner": "root"}
    service = user_service(
        name,
        image,
        entrypoint=["/bin/sh", "-c", start],
        net="host",
        **options,
        volumes=[f"{config.host_dir}:{config.container_dir}:ro", *volumes],
    )
    return {"write_files": [{**written, "content": config.text}], **service}


def host_user_data(document: Mapping[str, Any], what: str) -> str:
    """The host's `#cloud-config`, with node-images and node-health for every user service it runs."""
    services: Mapping[str, Any] = document.get("rancher", {}).get("services", {})
    user = {name: s for name, s in services.items() if s.get("labels", {}).get(SCOPE_LABEL) != "system"}
    for name, service in services.items():
        if name not in user and not service["image"].startswith(PRELOADED_IMAGE_PREFIX):
            raise ValueError(f"{what}: system service {name} uses {service['image']}, which is not preloaded")
    listing = "\n".join(_listed(name, s) for name, s in sorted(user.items()))
    return finish(merge(document, _supervisors(listing)), what)


def _listed(name: str, service: Mapping[str, Any]) -> str:
    """node-images' and node-health's line for a service: `name image`, and `once` for a one-shot step."""
    once = " once" if service.get("restart") == ONE_SHOT_RESTART else ""
    return f"{name} {service['image']}{once}"


def _supervisors(listing: str) -> dict[str, Any]:
    common: dict[str, Any] = {"net": "host", "uts": "host", "privileged": True}
    volumes = ["command-volumes", "system-volumes"]
    images = script(
        "node-images.sh",
        SERVICES=listing,
        PULL_ATTEMPTS=str(PULL_ATTEMPTS),
        PULL_DELAY=str(PULL_FIRST_DELAY_SECONDS),
        DOCKER_WAIT=str(DOCKER_WAIT_SECONDS),
    )
    health = script(
        "node-health.sh",
        SERVICES=listing,
        DEADLINE=str(HEALTH_DEADLINE_SECONDS),
        INTERVAL=str(HEALTH_INTERVAL_SECONDS),
        IDENTITY=IDENTITY_FILE,
    )
    files = [(IMAGES_SERVICE, images), (HEALTH_SERVICE, health)]
    return {
        "write_files": [
            {
                "container": name,
                "path": f"/usr/local/sbin/{name}",
                "permissions": "0755",
                "owner": "root",
                "content": text,
            }
            for name, text in files
        ],
        "rancher": {
            "services": {
                IMAGES_SERVICE: system_service(
                    ROS_BASE_IMAGE,
                    command=["sh", f"/usr/local/sbin/{IMAGES_SERVICE}"],
                    labels={AFTER: "docker", "io.rancher.os.detach": "false"},
                    volumes_from=volumes,
                    **common,
                ),
                HEALTH_SERVICE: system_service(
                    ROS_BASE_IMAGE,
                    command=["sh", f"/usr/local/sbin/{HEALTH_SERVICE}"],
                    labels={AFTER: BOOTSTRAP_SERVICE},
                    volumes_from=volumes,
                    **common,
                ),
            }
        },
    }
