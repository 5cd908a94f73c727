#!/usr/bin/env bash
# Fetch, on this machine, the wheels benchmarks/device_check.sh needs on the GPU machine (Python 3.12 with torch and
# transformers, but no diffusers or pydantic; it reaches no registry). Run once from the repository root, then name
# .whl in the device run's carry list.
set -euo pipefail
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform any)
for wheel in diffusers==0.42.1 pydantic==2.14.3 pydantic_core==2.50.4 annotated-types==0.8.0 \
             typing-inspection==0.4.5 importlib_metadata==10.2.0; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d .whl "$wheel"
done
ls -la .whl
