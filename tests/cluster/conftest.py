"""A Ray cluster of several nodes on this machine, as Ray's own fault-tolerance tests build theirs
(``ray.cluster_utils.Cluster``): a head and worker nodes, each with its own logical CPUs, object store and scratch
root. A node's scratch root is a fresh folder named in the node's environment (``REMIND_CURATE_SCRATCH``: its workers
keep their working folders there, engine.store_s3.workdir_for) and is removed with the node, so a worker that read a
path another node wrote would find nothing there. Records cross nodes only through Ray's object store or the bucket
(moto's S3 server on 127.0.0.1, the fixtures of tests/engine/test_s3_out.py).

Sizes: the ingest pipeline's actor pools and its largest task (write-samples: 2 CPUs) need 4 CPUs with one
detect-scene-cuts actor (``CLUSTER_CONFIG``). ``cluster``: a head of 4 and workers of 2. ``lean_head_cluster``: a head
of 0 and workers of 2, exactly 4, so when a worker is lost the run needs the node added in its place.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from engine.store_s3 import SCRATCH_ENV
from tests.engine.test_s3_out import moto_endpoint, s3  # noqa: F401 - fixtures reused by the cluster tests

OBJECT_STORE_BYTES = 1 << 30
CLUSTER_CONFIG = ("normalise:\n  windows_per_video: 1\npack:\n  max_shard_samples: 2\nencode:\n  preset: ultrafast\n"
                  "ray:\n  enabled: true\n  workers:\n    detect-scene-cuts: 1\n")


class NodeCluster:
    """A ``Cluster`` whose every node has a scratch root of its own, made with the node and removed with it."""

    def __init__(self, root: Path, head_cpus: int = 4):
        from ray.cluster_utils import Cluster

        from engine.runtime import configure_process

        configure_process()  # RAY_AUTH_MODE etc.: the nodes inherit this process's environment
        self.root = root
        self.scratch: dict[str, Path] = {}  # node id -> its scratch root
        self.cluster = Cluster(initialize_head=True, head_node_args=self._args("head", head_cpus))
        self.head = self.cluster.head_node
        self._remember(self.head)

    @property
    def address(self) -> str:
        return self.cluster.address

    def _args(self, name: str, cpus: int) -> dict:
        self._pending = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))
        return dict(num_cpus=cpus, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False,
                    env_vars={SCRATCH_ENV: str(self._pending)})

    def _remember(self, node) -> None:
        self.scratch[node.node_id] = self._pending

    def add_worker(self, name: str, cpus: int = 2):
        node = self.cluster.add_node(**self._args(name, cpus))
        self._remember(node)
        return node

    def remove(self, node, graceful: bool = False) -> None:
        """The node's processes killed (SIGKILL without ``graceful``), then its scratch root removed."""
        self.cluster.remove_node(node, allow_graceful=graceful)
        shutil.rmtree(self.scratch.pop(node.node_id), ignore_errors=True)

    def shutdown(self) -> None:
        self.cluster.shutdown()
        for scratch in self.scratch.values():
            shutil.rmtree(scratch, ignore_errors=True)
        self.scratch.clear()


@contextlib.contextmanager
def _nodes(head_cpus: int):
    root = Path(tempfile.mkdtemp(prefix="rc-nodes-", dir="/tmp"))  # short: Ray's socket paths are length-capped
    nodes = NodeCluster(root, head_cpus=head_cpus)
    try:
        nodes.workers = [nodes.add_worker("w1"), nodes.add_worker("w2")]
        yield nodes
    finally:
        import ray

        ray.shutdown()
        nodes.shutdown()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def cluster(s3):  # noqa: F811 - after s3: the nodes inherit the test's AWS environment
    """A head (4 CPUs) and two worker nodes (2 CPUs each); the driver (this process) keeps its own working folder."""
    with _nodes(head_cpus=4) as nodes:
        yield nodes


@pytest.fixture
def lean_head_cluster(s3):  # noqa: F811
    """A head that runs no tasks (``num-cpus: 0``, as KubeRay heads are usually set): the driver and Ray's own
    coordinators live there, and all the work is on the two worker nodes of 2 CPUs, so a node added when one is lost
    is needed, and takes work, for the run to go on at full width."""
    with _nodes(head_cpus=0) as nodes:
        yield nodes


@pytest.fixture
def cluster_config(tmp_path) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(CLUSTER_CONFIG)
    return path


def driver_workdir() -> Path:
    return Path(os.environ["REMIND_CURATE_WORKDIR"])
