"""A user mistake is one line on stderr, a non-zero exit, and fast: checked before Prefect or Ray start.

Subprocess cases run the CLI as a person would and measure it (Prefect's start-up alone is 12 s here, idle); the
other commands are driven through ``main([...])`` with the same one-line contract.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remind_curate.cli import main

REPO = Path(__file__).resolve().parents[1]
SECRET = "pexels-secret-0123456789abcdef"


# Wall time on a shared 2-core machine varies with its load (Prefect's own start-up: 12 s idle, far more loaded);
# CPU time does not: the broken behaviour (the error raised inside the flow) costs about 7 s of CPU, a check before
# any engine starts about 1 s (mostly imports).
MAX_WALL_S, MAX_CPU_S = 15.0, 4.0


def _cli(*args: str, env: dict[str, str] | None = None, max_cpu_s: float = MAX_CPU_S
         ) -> tuple[subprocess.CompletedProcess, float]:
    """Run the CLI; returns the process and its wall time. Asserts it stayed well under Prefect's start-up."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "remind_curate.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    assert cpu < max_cpu_s and wall < MAX_WALL_S, f"{cpu:.1f} s CPU, {wall:.1f} s wall: an engine started first"
    return proc, wall


def _one_line(err: str, command: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert lines[0].startswith(f"remind-curate {command}: error: "), lines[0]
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.timeout(120)
def test_missing_local_folder_is_one_line_fast_and_writes_nothing(tmp_path: Path) -> None:
    out, home = tmp_path / "out", tmp_path / "prefect-home"
    proc, _ = _cli("ingest", "--source", "local:/no/such/folder", "--out", str(out),
                   env={"PREFECT_HOME": str(home), "PREFECT_API_URL": ""})
    line = _one_line(proc.stderr, "ingest")
    assert proc.returncode == 2 and "source folder not found: /no/such/folder" in line
    assert proc.stdout == "" and not out.exists()
    assert not list(home.rglob("*.db")), "a Prefect server (its database) was started"


@pytest.mark.timeout(120)
def test_remind_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc, _ = _cli("ingest", "--source", "local:/no/such/folder", "--out", str(tmp_path / "o"),
                   env={"REMIND_DEBUG": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "UsageError" in proc.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args,expect", [
    (["ingest", "--source", "nosuchkind:x", "--out", "{tmp}/o"], "unknown source 'nosuchkind:x'"),
    (["ingest", "--source", "synthetic:2", "--out", "{tmp}/o", "--config", "{tmp}/bad.yaml"],
     "invalid config {tmp}/bad.yaml: prefilter.motion.no_such_key"),
    (["ingest", "--source", "synthetic:2"], "the following arguments are required: --out"),
])
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], expect: str) -> None:
    (tmp_path / "bad.yaml").write_text("prefilter:\n  motion:\n    no_such_key: 1\n")
    proc, _ = _cli(*[a.format(tmp=tmp_path) for a in args])
    line = _one_line(proc.stderr, "ingest")
    assert proc.returncode == 2 and expect.format(tmp=tmp_path) in line, line
    assert not (tmp_path / "o").exists()


@pytest.mark.timeout(120)
def test_pexels_credentials_are_checked_and_never_printed(tmp_path: Path) -> None:
    proc, _ = _cli("ingest", "--source", "pexels:ball_rolling", "--out", str(tmp_path / "o"),
                   "--pexels-permission-confirmed", env={"PEXELS_API_KEY": ""})
    line = _one_line(proc.stderr, "ingest")
    assert proc.returncode == 2 and "no Pexels API key" in line and "PEXELS_API_KEY" in line
    # With the key set, the next mistake (here --out is a file) is reported, and the key is nowhere in the output.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc, _ = _cli("ingest", "--source", "pexels:ball_rolling", "--out", str(blocker),
                   "--pexels-permission-confirmed", env={"PEXELS_API_KEY": SECRET})
    line = _one_line(proc.stderr, "ingest")
    assert "--out exists and is not a folder" in line and SECRET not in proc.stderr + proc.stdout
    # Without the permission flag: refused before anything is requested.
    proc, _ = _cli("ingest", "--source", "pexels", "--out", str(tmp_path / "o"), env={"PEXELS_API_KEY": SECRET})
    assert "permission not confirmed" in _one_line(proc.stderr, "ingest") and SECRET not in proc.stderr


def _main_error(capsys: pytest.CaptureFixture, args: list[str]) -> str:
    assert main(args) == 2
    captured = capsys.readouterr()
    return _one_line(captured.err, args[0])


@pytest.mark.timeout(60)
def test_every_command_with_paths_or_configs_checks_them_first(tmp_path: Path, capsys) -> None:
    t = str(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text("encode: {crf: not-a-number}\n")
    (tmp_path / "broken.yaml").write_text("pack: [unclosed\n")
    (tmp_path / "bad-train.yaml").write_text("optim: {lr: fast}\n")
    (tmp_path / "file").write_text("")
    (tmp_path / "huge-disk.yaml").write_text("ray: {enabled: true, min_free_disk_gib: 1.0e+9}\n")
    (tmp_path / "huge-disk-train.yaml").write_text("ray: {min_free_disk_gib: 1.0e+9}\n")
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / "shard-000000.tar").write_bytes(b"")
    cases = [
        (["validate", f"{t}/nope"], "shard, shard folder or ingest output not found"),
        # every source kind the resolver parses is checked, not a list kept here
        (["ingest", "--source", f"dl3dv:{t}/nope", "--out", f"{t}/i"], f"dl3dv source path not found: {t}/nope"),
        (["ingest", "--source", f"manifest:{t}/nope.parquet", "--out", f"{t}/i"], "manifest source path not found"),
        (["ingest", "--source", "openvid:", "--out", f"{t}/i"], "openvid:PATH needs a path"),
        (["demo", "--clips", "0", "--out", f"{t}/d"], "--clips must be at least 1"),
        (["ingest", "--source", "synthetic:1", "--out", f"{t}/i", "--config", f"{t}/huge-disk.yaml"],
         "ray.min_free_disk_gib is 1e+09 GiB but the disk under /tmp holds"),
        (["train", "--shards", f"{t}/shards", "--config", f"{t}/huge-disk-train.yaml", "--out", f"{t}/run"],
         "ray.min_free_disk_gib is 1e+09 GiB"),
        (["demo", "--out", f"{t}/file/sub"], "--out cannot be created"),
        (["regenerate", "--from", f"{t}/nope", "--out", f"{t}/r"], "--from (a finished ingest output) not found"),
        (["regenerate", "--from", f"{t}/empty", "--out", f"{t}/r"], "is not an ingest output (no run.json)"),
        (["preview", f"{t}/nope.tar", "--out", f"{t}/p.png"], "shard not found"),
        (["config", "show", "--config", f"{t}/bad.yaml"], "invalid config"),
        (["config", "show", "--config", f"{t}/broken.yaml"], "invalid config"),
        (["plan-pexels", "--config", f"{t}/nope.yaml"], "config file not found"),
        (["train", "--shards", f"{t}/nope", "--out", f"{t}/run"], "--shards not found"),
        (["train", "--shards", f"{t}/empty", "--out", f"{t}/run"], "holds no .tar shard"),
        (["train", "--shards", f"{t}/shards", "--config", f"{t}/bad-train.yaml", "--out", f"{t}/run"],
         "invalid training config"),
        (["train", "--shards", f"{t}/shards", "--out", f"{t}/run", "--max-steps", "0"], "--max-steps must be"),
        (["encode", "--shards", f"{t}/empty"], "holds no .tar shard"),
        (["schema", "--dir", f"{t}/file"], "--dir exists and is not a folder"),
        (["generate", "--checkpoint", f"{t}/nope", "--shards", f"{t}/shards", "--mode", "i2v", "--out", f"{t}/g"],
         "--checkpoint (a train output or checkpoint folder) not found"),
        (["generate", "--checkpoint", f"{t}/empty", "--shards", f"{t}/empty", "--mode", "v2v", "--out", f"{t}/g"],
         "holds no .tar shard"),
        (["evaluate", "--videos", f"{t}/empty", "--videos", f"{t}/nope", "--out", f"{t}/e"],
         "--videos (a generate output folder) not found: "),
        (["migrate", f"{t}/nope", f"{t}/m"], "OLD (a shard, a folder of shards or an ingest output) not found"),
        (["migrate", f"{t}/shards", f"{t}/file"], "NEW exists and is not a folder"),
    ]
    for args, expect in cases:
        line = _main_error(capsys, args)
        assert expect in line, (args, line)
    assert "encode.crf" in _main_error(capsys, ["config", "show", "--config", f"{t}/bad.yaml"])
    assert "optim.lr" in _main_error(capsys, ["encode", "--shards", f"{t}/shards", "--config",
                                              f"{t}/bad-train.yaml"])
    for name in ("run", "d", "r", "g", "e", "m", "i"):
        assert not (tmp_path / name).exists(), name


@pytest.mark.timeout(120)
def test_bf16_cut_detector_on_a_cpu_without_native_bf16_is_one_line(tmp_path: Path) -> None:
    """oneDNN capped at AVX2 (its own switch, ``ONEDNN_MAX_CPU_ISA``) is a CPU without native bf16: asking for a
    bf16 TransNetV2 there is the user's mistake, said before any engine starts, never a quiet float32 or PySceneDetect
    run."""
    config, out, home = tmp_path / "bf16.yaml", tmp_path / "out", tmp_path / "prefect-home"
    config.write_text("prefilter:\n  scene_cut:\n    transnet_precision: bfloat16\n")
    # Asking torch costs its import on top of the usual checks (2-3 CPU-s; 6.6 s in all for the command on a busy
    # 2-core machine, where the 6.5 s bound this had failed): the bound only catches a runaway; that no engine
    # started is what the last assertion checks (no output, no Prefect database).
    proc, _ = _cli("ingest", "--source", f"local:{REPO / 'tests/data/real'}", "--out", str(out), "--config",
                   str(config), env={"ONEDNN_MAX_CPU_ISA": "AVX2", "PREFECT_HOME": str(home), "PREFECT_API_URL": ""},
                   max_cpu_s=MAX_CPU_S + 8)
    line = _one_line(proc.stderr, "ingest")
    assert proc.returncode == 2 and "transnet_precision bfloat16 needs a CPU with native bf16" in line, line
    assert not out.exists() and not list(home.rglob("*.db")), "an output or a Prefect server was started"


@pytest.mark.timeout(180)
def test_a_flow_that_fails_ends_in_its_one_line_error_without_tracebacks(tmp_path: Path) -> None:
    """A failure inside the flow (here a file where the shards folder goes, met when packing): Prefect's console
    lines say which run failed, the command's last line says why, and no Python traceback is printed; the API log
    keeps it (and REMIND_DEBUG=1 shows it)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "shards").write_text("not a folder")
    proc = subprocess.run([sys.executable, "-m", "remind_curate.cli", "ingest", "--source", "synthetic:1", "--out",
                           str(out)], cwd=REPO, capture_output=True, text=True, timeout=150,
                          env={**os.environ, "PREFECT_HOME": str(tmp_path / "home"), "PREFECT_API_URL": ""})
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert lines[-1] == f"remind-curate ingest: error: FileExistsError: [Errno 17] File exists: '{out / 'shards'}'"
    assert "Traceback" not in proc.stderr and len(lines) <= 4, proc.stderr
    assert any("Flow run" in line and "FileExistsError" in line for line in lines[:-1]), proc.stderr
