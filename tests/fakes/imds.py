"""FakeImds: the EC2 instance metadata service (IMDSv1 GETs under /latest/meta-data/).

    with FakeImds(instance_id="i-0abc") as imds:
        env = {"IMDS_ENDPOINT": imds.url}
        imds.set_lifecycle_state("Terminated")   # what a termination lifecycle hook makes EC2 show
        imds.fail("instance-id", 500)            # that item answers HTTP 500 from now on
        imds.delay("placement/region", 3.0)      # ...or answers after 3 s
        imds.remove("local-ipv4")                # ...or 404, like a missing item

Items are a flat dict of paths (`placement/region`); a path ending in `/` lists its children the way
IMDS does (sub-directories with a trailing `/`). The instance role's credentials are served at
`iam/security-credentials/<role>` and use tests.fakes.aws's keys, so FakeAws accepts their signatures.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests.fakes.aws import ACCESS_KEY, SECRET_KEY, SESSION_TOKEN
from tests.fakes.server import FakeServer, Reply, Request

PREFIX = "/latest/meta-data/"


class FakeImds(FakeServer):
    def __init__(
        self,
        *,
        instance_id: str = "i-0123456789abcdef0",
        region: str = "eu-west-1",
        local_ipv4: str = "10.30.1.23",
        instance_type: str = "m5.large",
        lifecycle_state: str | None = "InService",
        role: str | None = "swarm-node",
        items: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.items: dict[str, str] = {
            "instance-id": instance_id,
            "local-ipv4": local_ipv4,
            "instance-type": instance_type,
            "placement/region": region,
            "placement/availability-zone": f"{region}a",
        }
        if lifecycle_state is not None:
            self.items["autoscaling/target-lifecycle-state"] = lifecycle_state
        if role is not None:
            self.set_credentials(role)
        self.items.update(items or {})
        self.failures: dict[str, int] = {}
        self.delays: dict[str, float] = {}

    def set(self, path: str, value: str) -> None:
        with self.lock:
            self.items[path] = value

    def remove(self, path: str) -> None:
        with self.lock:
            self.items.pop(path, None)

    def fail(self, path: str, status: int = 500) -> None:
        """`path` answers `status` until `recover(path)`."""
        with self.lock:
            self.failures[path] = status

    def recover(self, path: str) -> None:
        with self.lock:
            self.failures.pop(path, None)
            self.delays.pop(path, None)

    def delay(self, path: str, seconds: float) -> None:
        with self.lock:
            self.delays[path] = seconds

    def set_lifecycle_state(self, state: str) -> None:
        self.set("autoscaling/target-lifecycle-state", state)

    def set_credentials(
        self,
        role: str = "swarm-node",
        *,
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
        token: str = SESSION_TOKEN,
        expires_in: timedelta = timedelta(hours=6),
    ) -> None:
        """Serves the role's credentials as EC2 does; a short `expires_in` exercises refreshing."""
        expiration = (datetime.now(UTC) + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ")
        document = {
            "Code": "Success",
            "LastUpdated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Type": "AWS-HMAC",
            "AccessKeyId": access_key,
            "SecretAccessKey": secret_key,
            "Token": token,
            "Expiration": expiration,
        }
        with self.lock:
            for path in [p for p in self.items if p.startswith("iam/security-credentials/")]:
                del self.items[path]
            self.items[f"iam/security-credentials/{role}"] = json.dumps(document)

    def gets(self, path: str) -> int:
        """How many times `path` was read."""
        return sum(1 for request in self.requests if request.path == PREFIX + path)

    def handle(self, request: Request) -> Reply:
        if request.method != "GET" or not request.path.startswith(PREFIX):
            return Reply.text("Not Found", 404)
        path = request.path[len(PREFIX) :]
        delay = self.delays.get(path, 0.0)
        if path in self.failures:
            return Reply(self.failures[path], b"error", delay=delay)
        if path == "" or path.endswith("/"):
            rests = [item[len(path) :] for item in self.items if item.startswith(path)]
            children = sorted({rest.split("/")[0] + ("/" if "/" in rest else "") for rest in rests if rest})
            return Reply.text("\n".join(children), delay=delay) if children else Reply.text("Not Found", 404)
        if path not in self.items:
            return Reply.text("Not Found", 404, content_type="text/html")
        return Reply.text(self.items[path], delay=delay)
