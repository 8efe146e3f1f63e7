#!/usr/bin/env bash
# The main job. Until the benchmark suite lands this is a short demonstration of the memory engine:
# it creates a leader and replicas for each sync strategy, commits writes and prints what happened.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/common.sh
require_platform
require_dotnet

say "building (Release)"
dotnet build bench/CowWasm.Bench.csproj -c Release -nologo -v quiet -clp:ErrorsOnly
dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll demo "$@"
