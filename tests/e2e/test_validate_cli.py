"""`remind-curate validate` names the shard, the key and the problem of every bad sample."""
from __future__ import annotations

import io
import json
import shutil
import tarfile

import numpy as np
import pytest

from remind_curate.cli import main
from schemas.sample_io import npy_bytes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _rewrite(src, dst, mutate):
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for info in tin.getmembers():
            data = tin.extractfile(info).read()
            data = mutate(info.name, data)
            if data is None:
                continue
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))


def test_clean_output_validates(synthetic_run, capsys):
    out, summary = synthetic_run
    assert summary["status"].get("accepted", 0) >= 4
    assert main(["validate", str(out)]) == 0
    assert "OK" in capsys.readouterr().out


def test_corrupted_samples_are_named(synthetic_run, tmp_path, capsys):
    out, _ = synthetic_run
    shard = sorted((out / "shards").glob("*.tar"))[0]
    with tarfile.open(shard) as tar:
        keys = sorted({m.name.split(".", 1)[0] for m in tar.getmembers()})
    bad_cam, bad_graph, bad_mp4 = keys[0], keys[1], keys[2]

    def mutate(name, data):
        key, ext = name.split(".", 1)
        if key == bad_cam and ext == "camera.npy":
            return npy_bytes(np.zeros((80, 4, 4), np.float32))
        if key == bad_graph and ext == "graph.json":
            graph = json.loads(data)
            graph["edges"].append({"src": 0, "dst": 6, "kind": "memory"})
            return json.dumps(graph).encode()
        if key == bad_mp4 and ext == "mp4":
            return data[: len(data) // 3]
        return data

    broken = tmp_path / "broken.tar"
    _rewrite(shard, broken, mutate)
    assert main(["validate", str(broken)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith(f"broken.tar: {bad_cam}: camera.npy shape is (80, 4, 4)") for line in err), err
    assert any(line.startswith(f"broken.tar: {bad_graph}: graph.json") and "memory edge 0->6" in line
               for line in err), err
    assert any(line.startswith(f"broken.tar: {bad_mp4}: mp4") for line in err), err


def test_truncated_shard_is_reported(synthetic_run, tmp_path, capsys):
    out, _ = synthetic_run
    shard = sorted((out / "shards").glob("*.tar"))[0]
    cut = tmp_path / "cut.tar"
    cut.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    assert main(["validate", str(cut)]) == 1
    assert "cut.tar" in capsys.readouterr().err


def test_pickle_entries_are_refused(synthetic_run, tmp_path, capsys):
    out, _ = synthetic_run
    shard = sorted((out / "shards").glob("*.tar"))[0]
    first = tarfile.open(shard).getmembers()[0].name.split(".", 1)[0]
    sneaky = tmp_path / "pickled.tar"
    shutil.copy(shard, sneaky)
    with tarfile.open(sneaky, "a") as tar:
        info = tarfile.TarInfo(f"{first}.extra.pkl")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"\x80\x04N."))
    assert main(["validate", str(sneaky)]) == 1
    assert "forbidden type" in capsys.readouterr().err


def test_preview_cli_renders_a_png(synthetic_run, tmp_path, capsys):
    out, _ = synthetic_run
    shard = sorted((out / "shards").glob("*.tar"))[0]
    png = tmp_path / "sheet.png"
    assert main(["preview", str(shard), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
