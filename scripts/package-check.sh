#!/usr/bin/env bash
# Packs the libraries and the cowwasm tool into a temp folder feed, then uses them the way a user does:
#   1. builds and runs samples/QuickStart (outside the solution) against the packages: a PrologPool write and reads;
#   2. installs the tool from the feed (dotnet tool install) and runs `cowwasm prolog`, then `cowwasm serve` on a free
#      loopback port: /health, an authorised query, the console page at /, and a graceful stop on SIGTERM.
# Called by test.sh; needs node (a fresh machine has it) for the HTTP checks.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

work=$(mktemp -d /tmp/cowwasm-packages.XXXXXX)
version="0.1.0-check.$(date +%s).$$"      # unique: the NuGet cache never holds another build under this version
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null || true
  rm -rf "$work"
  for id in cowwasm cowwasm.cowmemory cowwasm.runtime cowwasm.runtime.native cowwasm.runtime.wasmtime cowwasm.pool cowwasm.prolog cowwasm.replication; do
    rm -rf "${NUGET_PACKAGES:-$HOME/.nuget/packages}/$id/$version"
  done
}
trap cleanup EXIT

say "packages: dotnet pack (version $version) into $work/feed"
dotnet pack CowWasm.sln -c Release -o "$work/feed" -nologo -v quiet -clp:ErrorsOnly -p:Version="$version"
for id in CowWasm.CowMemory CowWasm.Runtime CowWasm.Runtime.Native CowWasm.Runtime.Wasmtime CowWasm.Pool CowWasm.Prolog CowWasm.Replication cowwasm; do
  [ -f "$work/feed/$id.$version.nupkg" ] || die "dotnet pack made no $id package."
done

say "packages: samples/QuickStart against the feed"
cp -r samples "$work/samples"
sources=(--source "$work/feed")
while IFS= read -r source; do sources+=(--source "$source"); done < <(dotnet nuget list source --format short | awk '$1 ~ /^E/ {print $2}')
dotnet restore "$work/samples/QuickStart" --property:CowWasmVersion="$version" "${sources[@]}" -v quiet
dotnet run --project "$work/samples/QuickStart" --no-restore --property:CowWasmVersion="$version" \
  || die "samples/QuickStart failed against the packages."

say "packages: dotnet tool install cowwasm from the feed"
dotnet tool install cowwasm --tool-path "$work/tool" --add-source "$work/feed" --version "$version" >/dev/null
cowwasm="$work/tool/cowwasm"
"$cowwasm" --help | grep -q "serve" || die "cowwasm --help lists no serve verb."
answer=$("$cowwasm" prolog 'X is 6*7' 2>/dev/null)
[ "$answer" = "X is 6*7 -> X = 42" ] || die "cowwasm prolog answered '$answer'."

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
token="package-check-$(date +%s%N)"
COWWASM_TOKEN="$token" "$cowwasm" serve --port "$port" --durability none --data-dir "$work/data" --replicas 2 \
  >"$work/serve.log" 2>&1 &
server_pid=$!
PORT="$port" TOKEN="$token" node - <<'JS' || { cat "$work/serve.log" >&2; die "cowwasm serve did not answer as expected."; }
const base = `http://127.0.0.1:${process.env.PORT}`;
const auth = { "Authorization": `Bearer ${process.env.TOKEN}`, "Content-Type": "application/json" };
const sleep = ms => new Promise(r => setTimeout(r, ms));
(async () => {
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/health`)).ok) break; } catch { }
    if (i > 300) throw new Error("no /health within 60 s");
    await sleep(200);
  }
  const w = await fetch(`${base}/assert`, { method: "POST", headers: auth, body: JSON.stringify({ clause: "visit(rome)" }) });
  if (w.status !== 200) throw new Error(`assert: ${w.status} ${await w.text()}`);
  const q = await fetch(`${base}/query`, { method: "POST", headers: auth, body: JSON.stringify({ goal: "visit(X)" }) });
  const body = await q.text();
  if (q.status !== 200 || !body.includes("rome")) throw new Error(`query: ${q.status} ${body}`);
  const page = await fetch(`${base}/`);
  if (page.status !== 200 || !(await page.text()).includes("<title>")) throw new Error(`console page: ${page.status}`);
  console.log("cowwasm serve: health, assert, query and console page answered");
})().catch(e => { console.error(e.message); process.exit(1); });
JS
kill -TERM "$server_pid"
wait "$server_pid" || die "cowwasm serve exited with $? after SIGTERM (expected 0)."
server_pid=""
say "packages: ok"
