#!/usr/bin/env bash
# The main job on a fresh Debian machine: install, build in release mode, generate the built-in scene
# dataset if it is missing, train the demo config (a few minutes on 2 cores), then draw the model's
# decomposition and evaluate it. Extra arguments are passed to `space train` as KEY VALUE overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
echo "== building (release)"
swift build -c release 2>&1 | grep -E "error|warning: |Compiling|Build complete" | grep -v "^\[" || true
space=.build/release/space
[ -x "$space" ] || { echo "build failed" >&2; exit 1; }
if [ ! -d data/demo/train ]; then
    echo "== generating the built-in scene dataset in data/demo"
    "$space" make-dataset --root data/demo
fi
echo "== training configs/demo.yaml"
"$space" train --config configs/demo.yaml "$@"
# The model kept is the checkpoint with the best counting on the validation split (evaluated every
# eval_every steps during training: eval.checkpoint best, eval.metric error_rate in the config).
best=output/checkpoints/demo/best_error_rate.safetensors
echo "== decomposition of a few validation images ($best)"
"$space" show --config configs/demo.yaml resume_ckpt "$best"
echo "== evaluation on the test split ($best)"
mkdir -p output/demo
"$space" eval --config configs/demo.yaml | tee output/demo/eval.log
cat <<'EOT'

Done. Where things are:
  checkpoints   output/checkpoints/demo/   (model_*.safetensors, best_*.safetensors, config.yaml)
  logs          output/logs/demo/          (tensorboard --logdir output/logs/demo; scalars.csv)
  picture       output/demo/demo.png       (rows: input, reconstruction, fg, bg, alpha, boxes, components, masks)
  evaluation    output/eval/demo/results_*.json
Train longer with: bash scripts/demo.sh train.max_steps 4000   (it resumes from the last checkpoint)
EOT
echo
echo "Result: $(grep '^Summary:' output/demo/eval.log | sed 's/^Summary: //')"
echo "Picture: output/demo/demo.png"
echo "Time: $((SECONDS / 60)) min $((SECONDS % 60)) s"
