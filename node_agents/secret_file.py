"""One-shot: read a SecureString parameter from SSM Parameter Store with the instance role and write it where a
service reads it, before that service starts.

    python -m node_agents.secret_file --parameter /swarm-cluster/staging/consul-gossip-key \\
        --output /run/swarm-cluster/secrets/consul-gossip-key (--json-key encrypt | --line)

User-data names the parameter, never its value: launch template versions are readable by anyone allowed
`ec2:DescribeLaunchTemplateVersions`, and by any process on the host that reaches instance metadata.
- GetParameter with WithDecryption: the host's role may read this one parameter, and decrypt with the stack's
  key only through SSM. Throttling, 5xx and an unreachable endpoint are retried (node_agents.aws).
- The file holds `{"<json key>": value}` (a Consul config fragment), or the value as one line, for a shell's
  `read` (a value with a line break is refused). It is written to a temporary file of mode 0600 beside it,
  then renamed: a reader sees the whole file or none, and a failure leaves nothing behind.
- Exit 0 once written. Otherwise one line naming the parameter and AWS's answer, and exit 1: the service
  runs with `restart: on-failure`, so Docker runs it again (the role's policy may still be propagating on a
  first deploy), and node-health names it on the console if it never succeeds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from node_agents.aws import SSM, Aws, AwsError
from node_agents.http import HttpError
from node_agents.imds import ImdsError
from node_agents.runtime import log

AGENT = "secret-file"


def fetch(aws: Aws, parameter: str) -> str:
    answer = aws.json_call(SSM, "GetParameter", {"Name": parameter, "WithDecryption": True})
    value = answer["Parameter"]["Value"]
    if not isinstance(value, str) or not value:
        raise ValueError(f"SSM returned no value for {parameter}")
    return value


def content(value: str, json_key: str | None) -> str:
    """The file's text: `{"<json_key>": value}`, or with no key the value as one line."""
    if json_key is not None:
        return json.dumps({json_key: value}) + "\n"
    if "\n" in value or "\r" in value:
        raise ValueError("the value has a line break; it cannot be written as one line")
    return value + "\n"


def write_private(path: Path, text: str) -> None:
    """`text` at `path`, mode 0600, replacing any previous file at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="secret_file", description="Write an SSM SecureString where a service reads it."
    )
    parser.add_argument("--parameter", required=True, help="SSM parameter name")
    parser.add_argument("--output", required=True, type=Path, help="file the service reads")
    form = parser.add_mutually_exclusive_group(required=True)
    form.add_argument("--json-key", help='write {"KEY": value}')
    form.add_argument("--line", action="store_true", help="write the value as one line")
    args = parser.parse_args(argv)
    try:
        text = content(fetch(Aws(agent=AGENT), args.parameter), args.json_key)
    except (AwsError, HttpError, ImdsError, KeyError, ValueError) as error:
        log(AGENT, f"FAILED to read SSM parameter {args.parameter}: {error}; {args.output} not written")
        return 1
    write_private(args.output, text)
    log(AGENT, f"wrote {args.output} from SSM parameter {args.parameter}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
