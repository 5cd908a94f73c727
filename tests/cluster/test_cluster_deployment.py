"""The cluster deployment of prefect.yaml takes the Ray address from a Prefect variable, resolved by Prefect's own
templating (what `prefect deploy` does) against a real Prefect server."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"


@pytest.mark.timeout(120)
def test_the_cluster_deployment_reads_its_ray_address_from_a_prefect_variable(prefect_server):
    from prefect.client.orchestration import get_client
    from prefect.utilities.templating import resolve_variables
    from prefect.variables import Variable

    deployment = next(d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
                      if d["name"] == "ingest-cluster")

    async def resolved() -> dict:
        async with get_client() as client:
            return await resolve_variables(deployment["parameters"], client=client)

    Variable.set("remind_curate_ray_address", "ray://head.example:10001", overwrite=True)
    try:
        parameters = asyncio.run(resolved())
    finally:
        Variable.unset("remind_curate_ray_address")
    assert parameters["ray_address"] == "ray://head.example:10001"
    assert parameters["out"].startswith("s3://") and deployment["entrypoint"] == "flows/ingest.py:ingest"
