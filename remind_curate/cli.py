"""`remind-curate`: the command line. Each command is a thin call into flows/ or tasks/."""
from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path

from engine.runtime import configure_process
from remind_curate.console_logging import console_without_tracebacks
from remind_curate.preflight import OneLineParser, fail, preflight

configure_process()  # before Prefect or Ray is imported anywhere

FLOW_COMMANDS = {"ingest", "demo", "regenerate"}


def _print_summary(summary: dict) -> None:
    print(f"\nrun {summary['run_id']}  ->  {summary['out']}")
    print(f"  rows by status: {summary['status']}")
    for reason, count in sorted(summary["reasons"].items(), key=lambda kv: -kv[1]):
        print(f"    {reason}: {count}")
    print(f"  accepted by event group: {summary['event_groups']}")
    print(f"  accepted by interruption: {summary['interruptions']}")
    for name, size in summary["shards"].items():
        print(f"  {name}: {size / 2**20:.1f} MiB")
    print(f"  {summary['clips_processed']} clips processed in {summary['wall_s']} s "
          f"({summary['clips_per_s']} clips/s), {summary['clips_reused']} reused from an earlier attempt")
    print(f"  report: {summary['out']}/report.md  manifest: {summary['out']}/manifest.parquet")
    if not summary["status"].get("accepted"):
        print("  WARNING: no sample was accepted; see the reasons above.", file=sys.stderr)


def _prefect_ready(args: argparse.Namespace) -> None:
    """Wait for the temporary Prefect server ``main`` launched (if it launched one) before the first flow call."""
    server = getattr(args, "prefect_server", None)
    if server is not None:
        server.wait_ready()


def cmd_ingest(args: argparse.Namespace) -> int:
    from flows.ingest import ingest

    _prefect_ready(args)
    summary = ingest(source=args.source, out=args.out, config_path=args.config,
                     pexels_permission_confirmed=args.pexels_permission_confirmed, ray_address=args.ray_address)
    _print_summary(summary)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from tasks.shards.validate import validate_path

    report = validate_path(Path(args.path), decode_video=not args.no_video)
    for problem in report.problems:
        print(problem, file=sys.stderr)
    verdict = "OK" if report.ok else f"FAILED ({len(report.problems)} problems)"
    print(f"validate: {report.samples} samples in {report.shards} shards: {verdict}")
    return 0 if report.ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from flows.ingest import ingest
    from tasks.shards.validate import validate_path

    _prefect_ready(args)
    summary = ingest(source=f"synthetic:{args.clips}", out=args.out, config_path=args.config)
    _print_summary(summary)
    report = validate_path(Path(args.out))
    for problem in report.problems:
        print(problem, file=sys.stderr)
    print(f"validate: {report.samples} samples in {report.shards} shards: "
          f"{'OK' if report.ok else 'FAILED'}")
    return 0 if report.ok else 1


def cmd_config_show(args: argparse.Namespace) -> int:
    import yaml

    from schemas.config import load_config

    config = load_config(args.config)
    print(f"# config hash {config.config_hash}")
    print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), end="")
    return 0


def cmd_taxonomy(args: argparse.Namespace) -> int:
    from taxonomy import format_taxonomy_table, load_taxonomy

    print(format_taxonomy_table(load_taxonomy(), args.group))
    return 0


def cmd_plan_pexels(args: argparse.Namespace) -> int:
    from schemas.config import load_config
    from tasks.sources.pexels.plan import format_plan, plan_pexels
    from taxonomy import load_taxonomy

    config = load_config(args.config)
    types = [t for t in (args.types or "").split(",") if t] or None
    print(format_plan(plan_pexels(load_taxonomy(), config.pexels, types)))
    return 0


def cmd_regenerate(args: argparse.Namespace) -> int:
    from flows.regenerate import regenerate

    _prefect_ready(args)
    _print_summary(regenerate(source_out=args.from_, out=args.out, config_path=args.config,
                              ray_address=args.ray_address))
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from tasks.publish.previews import preview_sample
    from tasks.shards.validate import iter_samples

    shard, _, key = args.target.partition(":")
    if not key:
        key = str(next(iter_samples(Path(shard)))["__key__"])
    print(preview_sample(Path(shard), key, Path(args.out)))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from training.run import train

    result = train(args.shards, Path(args.config) if args.config else None, args.out,  # paths or s3:// URLs
                   max_steps=args.max_steps, ray_address=args.ray_address)
    print(json.dumps(result, indent=1, default=str))
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    from training.config import load_train_config
    from training.encode import encode_shards, encode_text_cache

    config = load_train_config(args.config)
    print(encode_shards(Path(args.shards), config))
    print(encode_text_cache(Path(args.shards), config))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from training.generate.run import generate

    summary = generate(Path(args.checkpoint), Path(args.shards), args.mode, Path(args.out),
                       Path(args.config) if args.config else None, limit=args.limit)
    print(json.dumps(summary, indent=1))
    return 0 if summary["ok"] else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tasks.evaluate.run import UnreviewedExamples, evaluate

    try:
        table = evaluate([Path(v) for v in args.videos], Path(args.out), Path(args.config) if args.config else None)
    except UnreviewedExamples as exc:  # the table is written; the run is not a verdict
        print((Path(args.out) / "table.md").read_text(), end="")
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print((Path(args.out) / "table.md").read_text(), end="")
    return 0 if table["variants"] else 1


def cmd_migrate(args: argparse.Namespace) -> int:
    from tasks.shards.migrate import migrate_path
    from tasks.shards.validate import validate_path

    result = migrate_path(Path(args.old), Path(args.new))
    for problem in result.problems:
        print(problem, file=sys.stderr)
    print(result.summary())
    report = validate_path(Path(args.new) / "shards")
    for problem in report.problems:
        print(problem, file=sys.stderr)
    print(f"validate: {report.samples} samples in {report.shards} shards: {'OK' if report.ok else 'FAILED'}")
    return 0 if report.ok and not result.problems else 1


def cmd_schema(args: argparse.Namespace) -> int:
    from schemas import jsonschema

    for path in jsonschema.write(Path(args.dir) if args.dir else jsonschema.JSON_DIR):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="remind-curate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="curate a source into WebDataset shards (rerun to resume)")
    p.add_argument("--source", required=True, help="local:PATH | synthetic:N | pexels[:TYPE,...] | "
                   "dl3dv:PATH | openvid:CSV | manifest:FILE | cache:OUT (= regenerate --from OUT)")
    p.add_argument("--out", required=True)
    p.add_argument("--config", help="YAML overriding the defaults (configs/offline.yaml)")
    p.add_argument("--pexels-permission-confirmed", action="store_true",
                   help="confirm you hold Pexels' permission to build a dataset from its videos")
    p.add_argument("--ray-address", help="run the per-clip stages on Ray: 'auto', 'ray://HOST:10001' or 'local'")
    p.set_defaults(fn=cmd_ingest)

    p = sub.add_parser("demo", help="ingest the synthetic source and validate the shards")
    p.add_argument("--out", default="out/demo")
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--config")
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser("validate", help="check shards against the schema; non-zero exit on any problem")
    p.add_argument("path", help="a shard, a folder of shards or an ingest output folder")
    p.add_argument("--no-video", action="store_true", help="skip decoding the MP4 entries")
    p.set_defaults(fn=cmd_validate)

    p = sub.add_parser("config", help="configuration")
    config_sub = p.add_subparsers(dest="config_command", required=True)
    show = config_sub.add_parser("show", help="print the effective configuration")
    show.add_argument("--config")
    show.set_defaults(fn=cmd_config_show)

    p = sub.add_parser("taxonomy", help="list the dynamic-event taxonomy")
    p.add_argument("--group")
    p.set_defaults(fn=cmd_taxonomy)

    p = sub.add_parser("plan-pexels", help="print the deterministic Pexels retrieval plan")
    p.add_argument("--config")
    p.add_argument("--types", help="comma-separated taxonomy ids")
    p.set_defaults(fn=cmd_plan_pexels)

    p = sub.add_parser("regenerate", help="rebuild shards with new augmentations from a run's cache")
    p.add_argument("--from", dest="from_", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--config")
    p.add_argument("--ray-address", help="run the stages on Ray, as for ingest")
    p.set_defaults(fn=cmd_regenerate)

    p = sub.add_parser("preview", help="contact sheet of one sample")
    p.add_argument("target", help="SHARD[:KEY]")
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_preview)

    p = sub.add_parser("train", help="train the causal Wan DiT on shards (Ray Train)")
    p.add_argument("--shards", required=True, help="a folder of *.tar or s3://bucket/prefix")
    p.add_argument("--config")
    p.add_argument("--out", required=True, help="a folder or s3://bucket/prefix (checkpoints and logs)")
    p.add_argument("--max-steps", type=int, help="total steps (a resumed run continues up to this)")
    p.add_argument("--ray-address", help="a running Ray cluster (else the config's ray.address, else a local Ray)")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("encode", help="cache Wan-VAE latents as shards next to the originals (optional)")
    p.add_argument("--shards", required=True)
    p.add_argument("--config")
    p.set_defaults(fn=cmd_encode)

    p = sub.add_parser("generate", help="stream videos from a train run's latest checkpoint (i2v, v2v, reference)")
    p.add_argument("--checkpoint", required=True, help="a train output folder (RUN) or one checkpoint folder")
    p.add_argument("--shards", required=True)
    p.add_argument("--mode", required=True, choices=["i2v", "v2v", "reference"])
    p.add_argument("--out", required=True)
    p.add_argument("--config", help="YAML over the run's config.yaml (e.g. a generate: section)")
    p.add_argument("--limit", type=int, help="at most N samples")
    p.set_defaults(fn=cmd_generate)

    p = sub.add_parser("evaluate", help="Appendix D review + PSNR/SSIM of generated videos; a comparison table")
    p.add_argument("--videos", required=True, action="append", help="a generate output folder (repeat: variants)")
    p.add_argument("--out", required=True)
    p.add_argument("--config", help="YAML with the vlm: reviewer section (and protocol:)")
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("migrate", help="rewrite shards of an older schema version as the current one")
    p.add_argument("old", help="a shard, a folder of shards or an ingest output (never changed)")
    p.add_argument("new", help="output folder: NEW/shards/ gets the migrated shards")
    p.set_defaults(fn=cmd_migrate)

    p = sub.add_parser("schema", help="write the generated JSON Schemas")
    p.add_argument("--dir")
    p.set_defaults(fn=cmd_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with ExitStack() as stack:
            if args.command in FLOW_COMMANDS:  # Prefect's temporary server boots while the checks and imports run
                from remind_curate.prefect_server import prefect_api

                args.prefect_server = stack.enter_context(prefect_api())
            preflight(args)  # arguments, paths, sources, credentials, configs: before any flow or Ray starts
            if args.command in FLOW_COMMANDS and not os.environ.get("REMIND_DEBUG"):
                console_without_tracebacks()  # a failed flow ends in the one-line error below, not three tracebacks
            return args.fn(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear one-line error for users; tracebacks with REMIND_DEBUG=1
        if os.environ.get("REMIND_DEBUG"):
            raise
        return fail(args.command, exc)


if __name__ == "__main__":
    sys.exit(main())
