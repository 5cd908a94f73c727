"""Sources of a run on a Ray cluster whose nodes share no disk (no cluster needed to check these):

- a local source path is refused in one line, before any work, unless ``ray.shared_storage`` says every node
  mounts it;
- a manifest whose rows are ``s3://`` URIs (moto's server) is listed without a copy on the driver (the clip ids are
  the same content hashes as on one machine), and the node that decodes an item fetches it into its own folder.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from schemas.config import load_config

VIDEO = Path(__file__).resolve().parents[1] / "data" / "real" / "edit-vtest-lawn.mp4"
ADDRESS = "10.255.0.1:6379"  # a cluster address; nothing here connects to it


def _config(tmp_path: Path, shared: bool = False):
    path = tmp_path / "cluster.yaml"
    path.write_text(f"ray:\n  enabled: true\n  address: '{ADDRESS}'\n  shared_storage: {str(shared).lower()}\n")
    return load_config(path)


@pytest.mark.timeout(60)
def test_a_local_source_on_a_cluster_is_refused_in_one_line_unless_shared(tmp_path):
    from remind_curate.preflight import UsageError, source
    from tasks.sources.resolve import list_sources

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(VIDEO.read_bytes())
    manifest = tmp_path / "rows.csv"
    manifest.write_text(f"uri\n{videos / 'a.mp4'}\n")
    config = _config(tmp_path)

    with pytest.raises(UsageError) as refused:
        source(f"local:{videos}", config)
    message = str(refused.value)
    assert "\n" not in message and ADDRESS in message and "ray.shared_storage" in message and "s3://" in message
    with pytest.raises(ValueError, match="row 0 .*ray.shared_storage"):
        list_sources(f"manifest:{manifest}", config, tmp_path / "out")

    shared = _config(tmp_path, shared=True)
    source(f"local:{videos}", shared)
    assert [Path(i.path).name for i in list_sources(f"local:{videos}", shared, tmp_path / "out").items] == ["a.mp4"]


@pytest.mark.timeout(120)
def test_an_s3_manifest_is_listed_without_a_driver_copy_and_fetched_where_decoded(s3, tmp_path):
    from tasks.sources.local import localise
    from tasks.sources.resolve import list_sources

    bucket, client, _ = s3
    client.put_object(Bucket=bucket, Key="videos/lawn.mp4", Body=VIDEO.read_bytes())
    manifest = tmp_path / "rows.csv"
    manifest.write_text(f"uri,caption\ns3://{bucket}/videos/lawn.mp4,a lawn\n")

    alone = list_sources(f"manifest:{manifest}", load_config(None), tmp_path / "one-machine").items
    listed = list_sources(f"manifest:{manifest}", _config(tmp_path), tmp_path / "driver").items

    assert [i.clip_id for i in listed] == [i.clip_id for i in alone] and not listed[0].error
    assert listed[0].path is None and listed[0].uri == f"s3://{bucket}/videos/lawn.mp4"
    assert not (tmp_path / "driver").exists()  # nothing fetched on the driver
    node = tmp_path / "node-scratch" / "work" / "run"
    fetched = localise(listed[0], node)
    assert Path(fetched.path).parent == node / "cache" / "fetched"
    assert Path(fetched.path).read_bytes() == VIDEO.read_bytes()
    assert localise(fetched, node) is fetched  # already local: nothing moves
