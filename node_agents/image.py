"""The one image every node agent runs in."""

# A Docker Official Image tag listed in docker-library/official-images `library/python` (commit 01732a42,
# entry "Tags: 3.12.12-alpine3.22, 3.12-alpine3.22, ..."; amd64 and arm64v8). Pinned to the patch release
# and the Alpine branch so that every node of a deploy runs the same interpreter. It is pulled by user
# Docker 19.03.15, which reads the OCI index the Official Images are published as; system-docker could not.
AGENT_IMAGE = "python:3.12.12-alpine3.22"
