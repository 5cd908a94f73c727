"""The validate flow (what the `validate` deployment runs) passes good shards and FAILS the run on a bad one,
naming the shard, the key and the problem in its report artifact."""
from __future__ import annotations

from pathlib import Path

import pytest

from schemas.sample_io import with_checksums
from tests.core.test_validator_checks import _encode, _frames, _sample, _without, _write_shard


def _artifact(flow_run_id) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["validate-report"]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    assert artifacts, f"no validate-report artifact for {flow_run_id}"
    return str(artifacts[0].data)


@pytest.mark.timeout(300)
def test_validate_flow_fails_on_a_bad_shard(prefect_server, tmp_path: Path) -> None:
    from flows.validate import validate

    videos = {"good": _encode(_frames())}
    good = with_checksums(_sample("good-one", videos, occluded=True).to_members())
    bad = with_checksums(_without(_sample("bad-one", videos, occluded=True).to_members(), "degraded.mp4",
                                  "degraded.txt"))
    (tmp_path / "ok").mkdir()
    (tmp_path / "broken").mkdir()
    _write_shard(tmp_path / "ok" / "shard-000000.tar", [("good-one", good)])
    _write_shard(tmp_path / "broken" / "shard-000000.tar", [("good-one", good), ("bad-one", bad)])

    state = validate(path=str(tmp_path / "ok"), return_state=True)
    assert state.is_completed() and state.result() == {"samples": 1, "shards": 1}

    state = validate(path=str(tmp_path / "broken"), return_state=True)
    assert state.is_failed(), state
    with pytest.raises(ValueError, match="1 problems .* bad-one: degraded.mp4 missing"):
        state.result()
    report = _artifact(state.state_details.flow_run_id)
    assert "2 samples in 1 shards: 1 problems" in report
    assert "`shard-000000.tar: bad-one: degraded.mp4 missing for interruption kind occluder`" in report
