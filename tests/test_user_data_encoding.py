"""Gzip'd user-data must be the same bytes on every machine that deploys, or a no-op deploy rolls everything."""

from __future__ import annotations

import zlib

import pulumi
import pytest

from offline.harness import StackRun, run_stack
from rendering.yaml_text import compression_problem, decode_user_data, encode_user_data

TEXT = "#cloud-config\nrancher:\n  services: {}\n" * 3
ENCODED = "H4sIAAAAAAACA1NOzskvTdFNzs9Ly0znKkrMS85ILbLiUlAoTi0qy0xOLbZSqK7lUqaiKgDkB743cgAAAA=="


def test_the_encoding_of_a_known_text_never_changes() -> None:
    # Pinned bytes: a zlib whose deflate output drifts would give every launch template a new version.
    assert encode_user_data(TEXT) == ENCODED
    assert decode_user_data(encode_user_data(TEXT)) == TEXT


def test_this_interpreter_links_the_reference_zlib() -> None:
    assert compression_problem() is None, zlib.ZLIB_RUNTIME_VERSION


@pytest.mark.parametrize("version", ["1.3.1.zlib-ng", "2.2.2", "1.3.0.1-motley"])
def test_another_deflate_implementation_is_refused_before_any_resource(
    monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    monkeypatch.setattr(zlib, "ZLIB_RUNTIME_VERSION", version)
    partial = StackRun(stack="staging")
    with pytest.raises(pulumi.RunError, match=f"links zlib {version}.*every group would roll"):
        run_stack("staging", record=partial)
    assert partial.resources == [] and partial.invokes == []
