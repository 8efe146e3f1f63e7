#!/usr/bin/env bash
# Builds the solution and runs every test. Set COWWASM_PROPERTY_CASES for longer property runs
# (default 200 cases per property) and COWWASM_PROPERTY_SEED=<seed>,<gamma> to replay a failure.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/common.sh
require_platform
require_dotnet
# wasm2c + wat2wasm: guests are compiled to native artifacts; nats-server: replication tests; chromium: the browser console's test; fonts-dejavu-core: the plots
require_apt_packages wabt nats-server chromium fonts-dejavu-core
command -v gcc >/dev/null 2>&1 || die "gcc is needed to compile guest artifacts."
command -v npm >/dev/null 2>&1 || die "npm is needed to fetch the Trealla guest (npm pack trealla@0.17.10)."

say "building (Debug: invariant checks are on)"
dotnet build CowWasm.sln -c Debug -nologo -v quiet -clp:ErrorsOnly
say "Trealla guest: fetch, verify and compile once (cached; the first compile takes ~35 s and ~1.7 GB RAM on 2 cores)"
dotnet run --project src/Cli/Cli.csproj -c Debug --no-build -- trealla-setup
say "running tests"
dotnet test tests/Tests.csproj -c Debug --no-build -nologo --logger "console;verbosity=normal" "$@"
say "running the runtime tests again with software bounds checks (the suite above used guard pages)"
COWWASM_TEST_BOUNDS_CHECKS=Software dotnet test tests/Tests.csproj -c Debug --no-build -nologo \
    --filter "FullyQualifiedName~CowWasm.Tests.Runtime" --logger "console;verbosity=normal" "$@"
say "running the results tooling's tests (bench/Tests)"
dotnet test bench/Tests/Bench.Tests.csproj -c Debug --no-build -nologo --logger "console;verbosity=normal" "$@"
say "packages: pack, build samples/QuickStart against them, install and run the cowwasm tool (scripts/package-check.sh)"
scripts/package-check.sh
