"""Bootstrap of every node agent: fetch the node_agents archive from S3 once, check it, run the agent.

User-data cannot carry the agents' code (EC2's 16 KB limit; see rendering/agents.py), so it carries this
file and the archive's S3 URL, whose file name is the archive's SHA-256 (`.../<sha256>.zip`).
`python3 bootstrap.py <module> [args]`:
1. unless ARCHIVE_DIR/<sha256>.zip already holds it, GETs AGENTS_URL signed with the instance role's
   credentials from instance metadata (SigV4), refuses content with another digest, and renames it into
   place (agents starting together each write their own temporary file);
2. runs `node_agents.<module>` from that archive as `__main__`, with `args` as its arguments.
It imports nothing from node_agents (that is what it fetches), hence its own small SigV4 for one GET.
A failed fetch exits non-zero; the service's restart policy (`always`, or `on-failure` for a one-shot
step) runs it again.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import runpy
import sys
import urllib.parse
import urllib.request

ARCHIVE_DIR = "/var/lib/swarm-cluster/agents"
IMDS = os.environ.get("IMDS_ENDPOINT", "http://169.254.169.254") + "/latest/meta-data/"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _get(url: str, headers: dict[str, str] | None = None) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as answer:
        body: bytes = answer.read()
        return body


def _credentials() -> dict[str, str]:
    role = _get(IMDS + "iam/security-credentials/").decode().split()[0]
    document: dict[str, str] = json.loads(_get(IMDS + "iam/security-credentials/" + role))
    return document


def _key(secret: str, day: str, region: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signed_headers(url: str, region: str, credentials: dict[str, str], now: datetime.datetime) -> dict[str, str]:
    """SigV4 headers for a GET of `url` (already encoded as sent, no query string)."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    parts = urllib.parse.urlsplit(url)
    headers = {
        "host": parts.netloc,
        "x-amz-content-sha256": EMPTY_SHA256,
        "x-amz-date": stamp,
        "x-amz-security-token": credentials["Token"],
    }
    names = ";".join(sorted(headers))
    canonical = "\n".join(
        ["GET", parts.path, "", *(f"{k}:{headers[k]}" for k in sorted(headers)), "", names, EMPTY_SHA256]
    )
    scope = f"{stamp[:8]}/{region}/s3/aws4_request"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{digest}"
    signature = hmac.new(_key(credentials["SecretAccessKey"], stamp[:8], region), to_sign.encode(), hashlib.sha256)
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials['AccessKeyId']}/{scope}, "
        f"SignedHeaders={names}, Signature={signature.hexdigest()}"
    )
    del headers["host"]
    return headers


def _present(path: str, sha256: str) -> bool:
    try:
        with open(path, "rb") as archive:
            return hashlib.sha256(archive.read()).hexdigest() == sha256
    except FileNotFoundError:
        return False


def fetch(path: str, url: str, sha256: str, region: str) -> None:
    if _present(path, sha256):
        return
    now = datetime.datetime.now(datetime.UTC)
    body = _get(url, signed_headers(url, region, _credentials(), now))
    if hashlib.sha256(body).hexdigest() != sha256:
        raise SystemExit(f"bootstrap: {url} does not have SHA-256 {sha256}; refusing to run it")
    temporary = f"{path}.{os.getpid()}"
    with open(temporary, "wb") as out:
        out.write(body)
    os.replace(temporary, path)


def main() -> None:
    url = os.environ["AGENTS_URL"]
    name = url.rsplit("/", 1)[1]
    path = os.path.join(os.environ.get("AGENTS_ARCHIVE_DIR", ARCHIVE_DIR), name)
    fetch(path, url, name.removesuffix(".zip"), os.environ["AWS_REGION"])
    module = sys.argv.pop(1)  # the agent sees its own arguments only
    sys.path.insert(0, path)
    runpy.run_module(f"node_agents.{module}", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
