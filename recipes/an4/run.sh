#!/usr/bin/env bash
# AN4 recipe: prepare manifests, train on CPU, evaluate on test, export the small shipped-size model.
#
#   bash recipes/an4/run.sh --data ../shared/data/an4 [--stage 1 --stop-stage 4] [--exp exp/an4]
#
# Stages (each leaves a .done marker in the experiment folder and is skipped once done):
#   1 prepare   manifests/an4/{train,dev,test}.jsonl from the original CMU layout
#   2 train     python -m asr.train (best checkpoint chosen on dev, never on test)
#   3 evaluate  greedy WER/CER on test -> EXP/eval_test/{hypotheses.txt,errors.jsonl,summary.json}
#   4 export    fp16 inference model with its numbers in the metadata -> EXP/model.pt
set -euo pipefail

data=../shared/data/an4
noise=../shared/data/noise
exp=exp/an4
manifests=manifests/an4
stage=1
stop_stage=4
epochs=95
max_minutes=44
seed=0

while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --noise) noise=$2; shift 2 ;;
    --exp) exp=$2; shift 2 ;;
    --manifests) manifests=$2; shift 2 ;;
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --max-minutes) max_minutes=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

mkdir -p "$exp"
# run_stage N NAME: true if stage N is selected and not done yet
run_stage() {
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ] || return 1
  if [ -f "$exp/.done.$1.$2" ]; then echo "stage $1 ($2): already done, skipping"; return 1; fi
  echo "stage $1: $2"
}
done_stage() { touch "$exp/.done.$1.$2"; }

augment=()
if [ -d "$noise" ]; then
  augment+=(--noise "$noise/noise.jsonl" --rir "$noise/rir.jsonl")
else
  echo "no noise folder at $noise: training with synthetic coloured noise, no reverberation"
fi

if run_stage 1 prepare; then
  python recipes/an4/prepare.py --data "$data" --out "$manifests"
  done_stage 1 prepare
fi

if run_stage 2 train; then
  resume=()
  [ -f "$exp/last.pt" ] && resume=(--resume)
  python -m asr.train --train "$manifests/train.jsonl" --dev "$manifests/dev.jsonl" --out "$exp" \
    --epochs "$epochs" --max-minutes "$max_minutes" --batch-seconds 90 --seed "$seed" "${augment[@]}" "${resume[@]}"
  done_stage 2 train
fi

if run_stage 3 evaluate; then
  python -m asr.evaluate --model "$exp/best.pt" --manifest "$manifests/test.jsonl" --out "$exp/eval_test" \
    | tee "$exp/eval_test.log"
  done_stage 3 evaluate
fi

if run_stage 4 export; then
  meta=$(python - "$exp" <<'PY'
import json, sys
exp = sys.argv[1]
test = json.load(open(f"{exp}/eval_test/summary.json"))
print(json.dumps({"data": "AN4 (CMU), train minus 6 dev speakers", "test_wer": test["wer"], "test_cer": test["cer"]}))
PY
)
  python -m asr.checkpoint "$exp/best.pt" "$exp/model.pt" --metadata "$meta"
  python -m asr.evaluate --model "$exp/model.pt" --manifest "$manifests/test.jsonl" --out "$exp/eval_test_fp16"
  echo "to ship it: cp $exp/model.pt asr/assets/an4.pt"
  done_stage 4 export
fi
