"""Ray workers get our code from the job's runtime_env (py_modules), not from a checkout on the node.

A driver started in an empty folder (the repository is not on its path, PYTHONPATH unset) starts a local Ray with
``job_runtime_env``; its worker imports our packages from the uploaded py_modules and validates a shard with them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.runtime import PACKAGES, dependencies, job_runtime_env

REPO = Path(__file__).resolve().parents[2]
DRIVER = """
import json, sys, tempfile
import ray
from engine.runtime import job_runtime_env

ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, object_store_memory=80 << 20,
         runtime_env=job_runtime_env({"REMIND_PROBE": "1"}), _temp_dir=tempfile.mkdtemp(prefix="rc-env-", dir="/tmp"))

@ray.remote
def probe(shard):
    import os, schemas, training
    from tasks.shards.validate import validate_path
    report = validate_path(shard, decode_video=False)
    return {"schemas": schemas.__file__, "training": training.__file__, "ok": report.ok, "samples": report.samples,
            "env": os.environ.get("REMIND_PROBE")}

print("RESULT " + json.dumps(ray.get(probe.remote(sys.argv[1]), timeout=120)))
ray.shutdown()
"""


def test_runtime_env_ships_our_packages_and_pins() -> None:
    env = job_runtime_env({"A": "1"}, pip=True)
    assert [Path(p).name for p in env["py_modules"]] == list(PACKAGES)
    assert all(Path(p).parent == REPO for p in env["py_modules"]) and env["env_vars"] == {"A": "1"}
    assert env["pip"]["packages"] == dependencies() and "torch==2.14.1" in dependencies()
    assert not any(r.startswith("depth-anything-3") for r in dependencies())
    assert "pip" not in job_runtime_env()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_worker_imports_our_code_from_the_runtime_env(small_shard: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(small_shard)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=280)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["ok"] and result["samples"] == 3 and result["env"] == "1"
    for module in ("schemas", "training"):
        path = Path(result[module])
        assert not path.is_relative_to(REPO), f"{module} came from the checkout: {path}"
        assert "runtime_resources" in path.parts and "py_modules_files" in path.parts, path
