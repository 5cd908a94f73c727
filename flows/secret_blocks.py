"""Secrets named in a config (``pexels.secret_block``) are Prefect Secret blocks, read here: the flows are the
floor that knows Prefect, the sources below only ask for a value by name."""
from __future__ import annotations

from typing import Any

from tasks.sources.pexels.secrets import read_secret_blocks_with


def read_prefect_secret(name: str) -> Any:
    from prefect.blocks.system import Secret

    return Secret.load(name).get()


read_secret_blocks_with(read_prefect_secret)
