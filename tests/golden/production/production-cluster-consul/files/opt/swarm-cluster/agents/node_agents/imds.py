from __future__ import annotations
import json
import os
from dataclasses import dataclass
from datetime import datetime
from node_agents.http import HttpClient, HttpStatusError
ENDPOINT_ENV = 'IMDS_ENDPOINT'
DEFAULT_ENDPOINT = 'http://169.254.169.254'
TIMEOUT = 2.0
REFRESH_MARGIN = 300.0

class ImdsError(Exception):
    pass

@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None
    expires_at: float | None = None

class Imds:

    def __init__(self, endpoint=None, *, timeout=TIMEOUT):
        self._http = HttpClient(endpoint or os.environ.get(ENDPOINT_ENV, DEFAULT_ENDPOINT), timeout=timeout)
        self._credentials: Credentials | None = None

    def get(self, path):
        try:
            return self._http.request('GET', f'/latest/meta-data/{path}').body.decode('utf-8')
        except HttpStatusError as error:
            if error.status == 404:
                return None
            raise

    def require(self, path):
        value = self.get(path)
        if not value:
            raise ImdsError(f'instance metadata has no {path}')
        return value

    def instance_id(self):
        return self.require('instance-id')

    def region(self):
        return self.require('placement/region')

    def target_lifecycle_state(self):
        return self.get('autoscaling/target-lifecycle-state')

    def credentials(self, now):
        cached = self._credentials
        if cached is None or cached.expires_at is None or cached.expires_at - REFRESH_MARGIN <= now:
            self._credentials = cached = self._fetch_credentials()
        return cached

    def forget_credentials(self):
        self._credentials = None

    def _fetch_credentials(self):
        roles = self.require('iam/security-credentials/').split()
        if not roles:
            raise ImdsError('the instance has no IAM role')
        document = json.loads(self.require(f'iam/security-credentials/{roles[0]}'))
        if document.get('Code') != 'Success':
            raise ImdsError(f"role credentials unavailable: {document.get('Code')}: {document.get('Message')}")
        expiration = datetime.fromisoformat(document['Expiration'].replace('Z', '+00:00'))
        return Credentials(document['AccessKeyId'], document['SecretAccessKey'], document['Token'], expiration.timestamp())
