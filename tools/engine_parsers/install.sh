#!/usr/bin/env bash
# Install a CPU-only venv in which an inference engine's real CLI parser runs.
#
#   tools/engine_parsers/install.sh ENGINE [DEST_VENV]
#
# ENGINE is vllm or sglang; DEST_VENV defaults to
# ~/.cache/deployc/engines/<engine>-<version>. Steps:
#   1. python3.11 -m venv DEST_VENV
#   2. torch 2.13.0, CPU build (the local wheel in /opt/wheels when present)
#   3. the engine wheel with --no-deps (its own deps would pull CUDA torch)
#   4. requirements-<engine>.txt with --no-deps (only what the parser needs)
#   5. checks: no nvidia-* package, torch has no CUDA, the checker parses a
#      sample command
# then writes DEST_VENV/.installed-<engine>-<version>. If that marker exists
# the script does nothing, so CI can call it on every run.
#
# Environment: PYTHON (default python3.11), DEPLOYC_TORCH_WHEEL (path or
# requirement for the CPU torch; default: /opt/wheels/torch-2.13.0+cpu-*.whl,
# else torch==2.13.0+cpu from the configured indexes).
set -euo pipefail

readonly VLLM_VERSION="0.33.0"
readonly SGLANG_VERSION="0.5.23"
readonly TORCH_VERSION="2.13.0"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf '[engine_parsers/install] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
    echo "usage: $0 {vllm|sglang} [DEST_VENV]" >&2
    exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
engine="$1"
case "$engine" in
    vllm) version="$VLLM_VERSION" ;;
    sglang) version="$SGLANG_VERSION" ;;
    *) usage ;;
esac
dest="${2:-${HOME}/.cache/deployc/engines/${engine}-${version}}"
marker="${dest}/.installed-${engine}-${version}"
requirements="${here}/requirements-${engine}.txt"
python="${PYTHON:-python3.11}"

if [[ -f "$marker" ]]; then
    log "${engine} ${version} already installed in ${dest} (found ${marker##*/}); nothing to do"
    exit 0
fi

[[ -f "$requirements" ]] || die "missing ${requirements}"
command -v "$python" >/dev/null || die "${python} not found (the engines' parsers need Python 3.11)"
"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "${python} is not Python 3.11"

# Refuse to wipe a directory that is not a venv.
if [[ -e "$dest" && ! -f "${dest}/pyvenv.cfg" ]] && [[ -n "$(ls -A "$dest" 2>/dev/null)" ]]; then
    die "${dest} exists, is not empty and is not a venv; refusing to overwrite it"
fi

start=$SECONDS
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off

log "creating venv ${dest} with $("$python" --version 2>&1)"
mkdir -p "$(dirname "$dest")"
"$python" -m venv --clear "$dest"
pip=("${dest}/bin/python" -m pip install --quiet --no-input)

torch_spec="${DEPLOYC_TORCH_WHEEL:-}"
if [[ -z "$torch_spec" ]]; then
    shopt -s nullglob
    wheels=(/opt/wheels/torch-"${TORCH_VERSION}"+cpu-cp311-*.whl)
    shopt -u nullglob
    if [[ ${#wheels[@]} -gt 0 ]]; then
        torch_spec="${wheels[0]}"
    else
        torch_spec="torch==${TORCH_VERSION}+cpu"
    fi
fi
log "installing torch (CPU): ${torch_spec}"
"${pip[@]}" "$torch_spec"

log "installing ${engine}==${version} --no-deps"
"${pip[@]}" --no-deps "${engine}==${version}"

log "installing ${requirements##*/} --no-deps"
"${pip[@]}" --no-deps -r "$requirements"

log "checking: no nvidia-* packages, CPU torch"
if "${dest}/bin/python" -m pip list --format=freeze 2>/dev/null | grep -i '^nvidia-'; then
    die "CUDA packages were installed into ${dest}"
fi
"${dest}/bin/python" -c '
import sys, torch
if torch.version.cuda is not None:
    sys.exit(f"torch {torch.__version__} is a CUDA build")
print(f"torch {torch.__version__} (CPU)", file=sys.stderr)
'

log "checking: the real ${engine} parser accepts a sample command"
sample="$(mktemp)"
trap 'rm -f "$sample"' EXIT
if [[ "$engine" == vllm ]]; then
    echo '[{"id": "smoke", "argv": ["meta-llama/Llama-3.1-8B-Instruct", "--tensor-parallel-size", "2"]}]' >"$sample"
else
    echo '[{"id": "smoke", "argv": ["--model-path", "meta-llama/Llama-3.1-8B-Instruct", "--tp-size", "2"]}]' >"$sample"
fi
result="$("${dest}/bin/python" "${here}/check_${engine}.py" "$sample" 2>/dev/null)" \
    || die "check_${engine}.py crashed; rerun it by hand to see why"
"${dest}/bin/python" -c '
import json, sys
r = json.loads(sys.argv[1])[0]
sys.exit(0 if r["ok"] else "smoke case rejected: " + str(r["error"]))
' "$result"

{
    echo "engine=${engine}"
    echo "version=${version}"
    echo "torch=${torch_spec##*/}"
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$marker"
log "done in $((SECONDS - start)) s; ${dest} uses $(du -sh "$dest" | cut -f1)"
log "interpreter: ${dest}/bin/python"
