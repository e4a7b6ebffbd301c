from __future__ import annotations
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from node_agents.aws import S3, Aws, AwsError
from node_agents.http import Response

@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    last_modified: str
    etag: str

def _quote(text, safe=''):
    return urllib.parse.quote(text, safe='-_.~' + safe)

class S3Client:

    def __init__(self, aws):
        self.aws = aws

    def _send(self, what, method, bucket, key='', *, query=None, body=b'', headers=None):
        encoded = '&'.join((f'{_quote(k)}={_quote(v)}' for k, v in sorted((query or {}).items())))
        path = '/' + _quote(key, '/') + (f'?{encoded}' if encoded else '')
        configured = self.aws.configured_endpoint(S3)
        if configured is None and '.' not in bucket:
            base = f'https://{bucket}.s3.{self.aws.region}.amazonaws.com'
        else:
            base, path = (configured or self.aws.endpoint(S3), f'/{bucket}{path}')
        return self.aws.send(S3, f's3 {what} s3://{bucket}/{key}', method, path, body=body, headers=headers, base=base)

    def put_object(self, bucket, key, body, *, kms_key_id=None):
        headers = {'Content-Type': 'application/octet-stream'}
        if kms_key_id:
            headers['x-amz-server-side-encryption'] = 'aws:kms'
            headers['x-amz-server-side-encryption-aws-kms-key-id'] = kms_key_id
        response = self._send('PutObject', 'PUT', bucket, key, body=body, headers=headers)
        return response.headers.get('x-amz-version-id', '')

    def get_object(self, bucket, key):
        try:
            return self._send('GetObject', 'GET', bucket, key).body
        except AwsError as error:
            if error.code == 'NoSuchKey':
                return None
            raise

    def list_objects_v2(self, bucket, prefix=''):
        objects: list[S3Object] = []
        token: str | None = None
        while True:
            query = {'list-type': '2', 'prefix': prefix}
            if token:
                query['continuation-token'] = token
            root = ET.fromstring(self._send('ListObjectsV2', 'GET', bucket, query=query).body)
            for item in root.findall('{*}Contents'):
                objects.append(S3Object(key=item.findtext('{*}Key', ''), size=int(item.findtext('{*}Size', '0')), last_modified=item.findtext('{*}LastModified', ''), etag=item.findtext('{*}ETag', '')))
            token = root.findtext('{*}NextContinuationToken')
            if root.findtext('{*}IsTruncated') != 'true' or not token:
                return objects
