#!/usr/bin/env bash
# The main job: the strategy comparison (bench `compare`) on the embedded default guest. Prints a table and
# writes docs/results/latest.md, summary.json and SVG plots. Options: --full (every size and dirty count),
# --out DIR. The engine walk-through that used to run here: `dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll demo`.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/common.sh
require_platform
require_dotnet
require_apt_packages wabt   # wasm2c + wat2wasm: guests are compiled to native artifacts
command -v gcc >/dev/null 2>&1 || die "gcc is needed to compile guest artifacts."

say "building (Release)"
dotnet build bench/CowWasm.Bench.csproj -c Release -nologo -v quiet -clp:ErrorsOnly
dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll compare "$@"
