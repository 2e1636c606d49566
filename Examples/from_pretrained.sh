#!/usr/bin/env bash
# Evaluate and draw one of the authors' pretrained checkpoints (PyTorch <= 1.5 legacy format or zip).
# Usage: Examples/from_pretrained.sh pretrained/atari_spaceinvaders.pth configs/atari_spaceinvaders.yaml [KEY VALUE ...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
space=.build/release/space
ckpt=$1; config=$2; shift 2
"$space" convert "$ckpt" "${ckpt%.*}.safetensors"          # optional: the .pth loads directly too
"$space" eval --config "$config" resume_ckpt "$ckpt" "$@"
"$space" show --config "$config" resume_ckpt "$ckpt" "$@"
