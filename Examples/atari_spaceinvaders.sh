#!/usr/bin/env bash
# SPACE on Atari Space Invaders, as the reference's configs/atari_spaceinvaders.yaml: G=16, K=3.
# Frames go in data/ATARI/SpaceInvaders-v0/{train,validation,test}/*.png (any size; resized to 128x128
# exactly as PIL does). Extra arguments are KEY VALUE overrides, e.g. train.batch_size 8.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
space=.build/release/space
"$space" train --config configs/atari_spaceinvaders.yaml "$@"
"$space" show --config configs/atari_spaceinvaders.yaml "$@"
# Atari frames have no ground-truth boxes here: eval reports mse only unless test/bb exists.
"$space" eval --config configs/atari_spaceinvaders.yaml eval.checkpoint last "$@"
