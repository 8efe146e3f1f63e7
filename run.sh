#!/usr/bin/env bash
# The main job. Until the benchmark suite lands this is a short demonstration of the memory engine:
# it creates a leader and replicas for each sync strategy, commits writes and prints what happened.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/common.sh
require_platform
require_dotnet
require_apt_packages wabt   # wasm2c + wat2wasm: guests are compiled to native artifacts
command -v gcc >/dev/null 2>&1 || die "gcc is needed to compile guest artifacts."

say "building (Release)"
dotnet build bench/CowWasm.Bench.csproj -c Release -nologo -v quiet -clp:ErrorsOnly
dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll demo "$@"
