"""The validate flow: check packed shards against the schema (for CI jobs and scheduled audits)."""
from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tasks.shards.validate import ValidationReport, validate_path


@task(name="validate-shards", cache_policy=NO_CACHE, persist_result=False)
def validate_shards(path: str, decode_video: bool = True) -> ValidationReport:
    return validate_path(Path(path), decode_video)


@task(name="publish-validation", cache_policy=NO_CACHE, persist_result=False)
def publish_validation(path: str, report: ValidationReport) -> dict:
    lines = [f"# validate {path}", "", f"{report.samples} samples in {report.shards} shards: "
             f"{'OK' if report.ok else f'{len(report.problems)} problems'}", ""]
    lines += [f"- `{p}`" for p in report.problems[:200]]
    create_markdown_artifact(markdown="\n".join(lines), key="validate-report")
    if not report.ok:
        raise ValueError(f"{len(report.problems)} problems in {path}; first: {report.problems[0]}")
    return {"samples": report.samples, "shards": report.shards}


@flow(name="validate")
def validate(path: str, decode_video: bool = True) -> dict:
    """Fails (and the flow run is marked failed) when any sample breaks the schema."""
    return publish_validation(path, validate_shards(path, decode_video))
