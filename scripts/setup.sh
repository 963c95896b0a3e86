#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages tunelab needs, only those that are missing, and says which.
# Works as root or through sudo. Usage: scripts/setup.sh [--no-gui] [--no-torch]
#   --no-gui    skip the ImGui/GLFW/Xvfb packages (engine, terminal lessons and tests still build)
#   --no-torch  skip python3-torch (the PyTorch parity test and side-by-side benchmarks then skip)
set -euo pipefail

core_pkgs=(build-essential cmake pkg-config ninja-build libeigen3-dev libgtest-dev googletest
           libbenchmark-dev libmd4c-dev libmd4c-html0-dev nlohmann-json3-dev libcli11-dev
           libyaml-cpp-dev libopenblas-pthread-dev)
gui_pkgs=(libimgui-dev libstb-dev libglfw3-dev libgl-dev libgl1-mesa-dev libgl1-mesa-dri libglx-mesa0
          xvfb xauth fonts-nanum fonts-dejavu-core)
torch_pkgs=(python3 python3-numpy python3-torch)

want=("${core_pkgs[@]}")
with_gui=1; with_torch=1
for arg in "$@"; do
    case "$arg" in
        --no-gui) with_gui=0 ;;
        --no-torch) with_torch=0 ;;
        *) echo "setup.sh: unknown option '$arg' (known: --no-gui, --no-torch)" >&2; exit 2 ;;
    esac
done
[ "$with_gui" = 1 ] && want+=("${gui_pkgs[@]}")
[ "$with_torch" = 1 ] && want+=("${torch_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all ${#want[@]} packages already installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "setup: these packages are missing and I am neither root nor have sudo: ${missing[*]}" >&2
    echo "setup: install them with your package manager, then run this again" >&2
    exit 2
fi

echo "setup: installing ${#missing[@]} missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get -o DPkg::Lock::Timeout=900 update -qq
"${as_root[@]}" apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
