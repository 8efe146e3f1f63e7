# Shared set-up for run.sh and test.sh: checks the platform and installs what is missing (idempotent).
# Sourced, not executed.

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*" >&2; }

require_platform() {
  [ "$(uname -s)" = Linux ] || die "CowWasm needs Linux (memfd, userfaultfd, /proc/self/pagemap); this is $(uname -s)."
  [ "$(uname -m)" = x86_64 ] || die "CowWasm is built for x86-64; this is $(uname -m)."
}

require_dotnet() {
  command -v dotnet >/dev/null 2>&1 || die "the .NET SDK is not on PATH; install .NET 10 (https://dot.net) and retry."
  local major
  major=$(dotnet --version 2>/dev/null | cut -d. -f1)
  [ "${major:-0}" -ge 10 ] || die "the .NET SDK is $(dotnet --version 2>/dev/null); CowWasm needs .NET 10 or later."
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
}

# Installs Debian packages that are missing. Runs apt-get update at most once per call.
require_apt_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing packages (${missing[*]}) and no apt-get to install them."
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing ${missing[*]}"
  $sudo apt-get update -qq || die "apt-get update failed."
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed."
}
