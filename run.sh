#!/usr/bin/env bash
# The main job: the strategy comparison (bench `compare`) on the embedded default guest. Prints a table and
# writes docs/results/latest.md, summary.json and plots (PNG and SVG). Options: --full (every size and dirty count),
# --out DIR. `./run.sh --guest trealla`: the Trealla workload on both runtimes (native and Wasmtime; summary-trealla.json).
# `./run.sh --serve [--quick] [--runtime wasmtime|native]`: the query service (src/Server) under load instead (bench serve-load,
# docs/results/serve-load.md). `./run.sh --durability [SECONDS] [COMMITS]`: the commit log's cost and recovery
# (bench durability, docs/results/durability.md). `./run.sh --replicate [COMMITS] [CATCHUP]`: followers through NATS JetStream (bench
# replicate: lag, bytes per commit, catch-up; docs/results/replication.md). The engine walk-through that used to run here: `dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll demo`.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/common.sh
require_platform
require_dotnet
# wasm2c + wat2wasm: guests are compiled to native artifacts; nats-server: --replicate; fonts-dejavu-core: the plots' text
require_apt_packages wabt nats-server fonts-dejavu-core
command -v gcc >/dev/null 2>&1 || die "gcc is needed to compile guest artifacts."

say "building (Release)"
dotnet build bench/CowWasm.Bench.csproj -c Release -nologo -v quiet -clp:ErrorsOnly
if [[ "${1:-}" == "--serve" ]]; then
    shift
    say "the query service under load (serve-load): pool and locked interpreter in a child process, clients on loopback"
    exec dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll serve-load "$@"
fi
if [[ "${1:-}" == "--durability" ]]; then
    shift
    say "durability (durability): the commit log's cost on writes, and start-up replaying 10,000 commits (about 1 min)"
    exec dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll durability "$@"
fi
if [[ "${1:-}" == "--replicate" ]]; then
    shift
    say "followers through NATS JetStream (replicate): a loopback nats-server, a Trealla leader and followers"
    exec dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll replicate "$@"
fi
dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll compare "$@"
