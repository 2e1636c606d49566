#!/usr/bin/env bash
# SPACE on the 3D Room small dataset (configs/3d_room_small.yaml: G=8, K=5, boundary loss on).
# Images in data/OBJ3D_SMALL/{train,val,test}/<N>-*.png, boxes in data/OBJ3D_SMALL/<split>/bb/bb_<N>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
space=.build/release/space
"$space" train --config configs/3d_room_small.yaml "$@"
"$space" eval --config configs/3d_room_small.yaml "$@"      # best checkpoint by eval.metric (ap_avg)
"$space" show --config configs/3d_room_small.yaml "$@"
