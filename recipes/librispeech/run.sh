#!/usr/bin/env bash
# LibriSpeech recipe: download, prepare, train on one GPU or many nodes (torchrun, DDP, AMP), evaluate.
#
#   bash recipes/librispeech/run.sh [--config recipes/librispeech/conf/train-clean-100.json] [--stage 1 --stop-stage 4]
#
# Stages (each leaves a .done marker in the experiment folder and is skipped once done):
#   1 download  OpenSLR 12 archives of the splits (resumable, MD5-checked), extracted; the --lm file of OpenSLR 11
#   2 prepare   manifests/librispeech/<split>.jsonl, the config's training/dev manifests, its BPE model if any
#   3 train     torchrun ... -m asr.train --config EXP/train.json (one process per GPU; --nnodes N for more nodes)
#   4 evaluate  dev/test: greedy, then beam search + LM when asr.evaluate offers it -> a row each in RESULTS.md
#
# Options: --data-dir DIR (archives, LibriSpeech/, lm/)  --splits "S1 S2" (stage 1 and 2; default: the config's
# training splits + dev/test)  --mirror URL  --lm-mirror URL  --lm FILE|none  --exp DIR  --manifests DIR
# --device cuda|cpu  --nproc N (processes per node; default: GPUs)  --nnodes N  --rdzv-endpoint HOST:PORT
# --rdzv-id ID  --beam-size N  --alpha A  --beta B  --eval-sets "S1 S2"  --checksums FILE (md5sum listing that
# replaces the built-in sums, for a mirror of your own)  --train-args "FLAGS" (asr.train flags that win over the config)
# --results FILE (the table stage 4 appends to; default recipes/librispeech/RESULTS.md)
# Many nodes: run stage 3 on every node with the same --nnodes, --rdzv-endpoint (a host of the job) and --rdzv-id.
# Exit 3: training stopped by its --max-minutes budget before its last epoch (stage 3 is not marked done; run.sh
# again resumes it from EXP/last.pt, with more time given as --train-args "--max-minutes M": the budget counts all
# resumes). A stop by SIGTERM/SIGINT fails the stage too (torchrun's exit); running it again resumes.
set -euo pipefail

recipe=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$recipe/../.." && pwd)
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"  # works from a checkout, installed or not

config=$recipe/conf/train-clean-100.json
data_dir=data/librispeech
splits=""
mirror=https://www.openslr.org/resources/12
lm_mirror=https://www.openslr.org/resources/11
lm=3-gram.pruned.1e-7.arpa.gz
exp=""
manifests=manifests/librispeech
device=cuda
nproc=""
nnodes=1
rdzv_endpoint=""
rdzv_id=asr-librispeech
beam_size=32
alpha=0.8
beta=1.0
eval_sets="dev-clean dev-other test-clean test-other"
checksums=""
train_args=""
results=$recipe/RESULTS.md
stage=1
stop_stage=4

while [ $# -gt 0 ]; do
  value=${2-}  # the flag's value (checked below, once the flag is known)
  case "$1" in
    --config) config=$value ;;
    --data-dir) data_dir=$value ;;
    --splits) splits=$value ;;
    --mirror) mirror=$value ;;
    --lm-mirror) lm_mirror=$value ;;
    --lm) lm=$value ;;
    --exp) exp=$value ;;
    --manifests) manifests=$value ;;
    --device) device=$value ;;
    --nproc) nproc=$value ;;
    --nnodes) nnodes=$value ;;
    --rdzv-endpoint) rdzv_endpoint=$value ;;
    --rdzv-id) rdzv_id=$value ;;
    --beam-size) beam_size=$value ;;
    --alpha) alpha=$value ;;
    --beta) beta=$value ;;
    --eval-sets) eval_sets=$value ;;
    --checksums) checksums=$value ;;
    --train-args) train_args=$value ;;
    --stage) stage=$value ;;
    --stop-stage) stop_stage=$value ;;
    --results) results=$value ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  [ $# -gt 1 ] || { echo "run.sh: $1 needs a value" >&2; exit 2; }
  # a value that is a flag: the value was left out (--data --exp e); --train-args passes flags on
  [[ "$1" = --train-args || ! "$value" =~ ^--[a-z] ]] ||
    { echo "run.sh: $1 needs a value (got $value, a flag)" >&2; exit 2; }
  shift 2
done
. "$repo/recipes/options.sh"  # check_stages, check_threads
check_stages 1 4 "$stage" "$stop_stage"

# conf KEY: a setting of the config file (lists space-separated)
conf() {
  python -c 'import json, sys; v = json.load(open(sys.argv[1])).get(sys.argv[2], "")
print(" ".join(map(str, v)) if isinstance(v, list) else v)' "$config" "$1"
}
train_sets=$(conf train_sets)
train_name=$(conf train_name)
dev_sets=$(conf dev_sets)
dev_name=$(conf dev_name)
bpe_size=$(conf bpe_size)
bpe_size=${bpe_size:-0}
[ -n "$exp" ] || exp=exp/librispeech/$(basename "$config" .json)
[ -n "$splits" ] || splits=$(printf '%s\n' $train_sets $dev_sets $eval_sets | awk '!seen[$0]++' | tr '\n' ' ')
if [ -z "$nproc" ]; then
  nproc=1
  [ "$device" = cuda ] && nproc=$(python -c 'import torch; print(max(1, torch.cuda.device_count()))')
fi
tokenizer=()
[ "$bpe_size" -gt 0 ] && tokenizer=(--tokenizer "$manifests/$train_name.bpe$bpe_size.model")
lm_arpa=$data_dir/lm/${lm%.gz}

mkdir -p "$exp"
# run_stage N NAME: true if stage N is selected and not done yet
run_stage() {
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ] || return 1
  if [ -f "$exp/.done.$1.$2" ]; then echo "stage $1 ($2): already done, skipping"; return 1; fi
  echo "stage $1: $2"
}
done_stage() { touch "$exp/.done.$1.$2"; }

if run_stage 1 download; then
  extra=()
  [ "$lm" != none ] && extra+=(--lm "$lm")
  [ -n "$checksums" ] && extra+=(--checksums "$checksums")
  python "$recipe/download.py" --data-dir "$data_dir" --splits $splits --mirror "$mirror" \
    --lm-mirror "$lm_mirror" "${extra[@]}"
  done_stage 1 download
fi

if run_stage 2 prepare; then
  bpe=()
  [ "$bpe_size" -gt 0 ] && bpe=(--bpe-size "$bpe_size")
  python "$recipe/prepare.py" --data-dir "$data_dir/LibriSpeech" --splits $splits --out "$manifests" \
    --combine "$train_name" $train_sets --combine "$dev_name" $dev_sets "${bpe[@]}"
  for name in "$train_name" "$dev_name"; do  # what stage 3 trains on: never mark the stage done without it
    if [ ! -s "$manifests/$name.jsonl" ]; then
      echo "stage 2: $manifests/$name.jsonl was not written (config $config); not marking the stage done" >&2
      exit 1
    fi
  done
  done_stage 2 prepare
fi

if run_stage 3 train; then
  python -c 'import json, sys; json.dump(json.load(open(sys.argv[1]))["train"], open(sys.argv[2], "w"), indent=2)' \
    "$config" "$exp/train.json"
  launch=(python -m torch.distributed.run --nproc-per-node "$nproc")
  if [ "$nnodes" -gt 1 ]; then
    [ -n "$rdzv_endpoint" ] || { echo "run.sh: --nnodes $nnodes needs --rdzv-endpoint HOST:PORT" >&2; exit 2; }
    launch+=(--nnodes "$nnodes" --rdzv-backend c10d --rdzv-endpoint "$rdzv_endpoint" --rdzv-id "$rdzv_id")
  else
    launch+=(--standalone)
  fi
  resume=()
  [ -f "$exp/last.pt" ] && resume=(--resume)
  "${launch[@]}" -m asr.train --config "$exp/train.json" --train "$manifests/$train_name.jsonl" \
    --dev "$manifests/$dev_name.jsonl" --out "$exp" --device "$device" "${tokenizer[@]}" "${resume[@]}" $train_args
  # asr.train exits 0 when --max-minutes stops it (a budget's normal end): the stage is done only once last.pt has
  # trained all its epochs, or running run.sh again would evaluate a half-trained best.pt instead of resuming.
  read -r trained wanted < <(python -c 'import sys; from asr.checkpoint import read_checkpoint
m = read_checkpoint(sys.argv[1])["metadata"]; print(m["epochs"], m["train_config"]["epochs"])' "$exp/last.pt")
  if [ "$trained" -lt "$wanted" ]; then
    echo "stage 3: training stopped by its --max-minutes budget after $trained of $wanted epochs; not marking the" \
      "stage done: run.sh again resumes it from $exp/last.pt (give it more time: --train-args \"--max-minutes M\"," \
      "the budget counts every resume)" >&2
    exit 3
  fi
  done_stage 3 train
fi

if run_stage 4 evaluate; then
  model=$exp/best.pt
  beam=yes
  if ! python -m asr.evaluate --help 2>/dev/null | grep -q -- "--decoder"; then
    beam="no: this asr.evaluate has no --decoder option"
  elif [ "$lm" = none ] || [ ! -f "$lm_arpa" ]; then
    beam="no: no language model at $lm_arpa (stage 1 with --lm FILE fetches one)"
  elif [ "$bpe_size" -gt 0 ]; then
    beam="no: the beam search spells words in characters, this model emits BPE pieces"
  fi
  [ "$beam" = yes ] || echo "beam search + LM skipped ($beam)"
  for split in $eval_sets; do
    out=$exp/eval/$split.greedy
    python -m asr.evaluate --model "$model" --manifest "$manifests/$split.jsonl" --out "$out" --device "$device"
    python "$recipe/results.py" "$out/summary.json" --model "$model" --split "$split" --decoder greedy \
      --results "$results"
    if [ "$beam" = yes ]; then
      out=$exp/eval/$split.beam$beam_size.$(basename "$lm_arpa" .arpa)
      python -m asr.evaluate --model "$model" --manifest "$manifests/$split.jsonl" --out "$out" --device "$device" \
        --decoder beam --beam-size "$beam_size" --lm "$lm_arpa" --alpha "$alpha" --beta "$beta"
      python "$recipe/results.py" "$out/summary.json" --model "$model" --split "$split" \
        --decoder "beam $beam_size + $(basename "$lm_arpa") (alpha $alpha, beta $beta)" --results "$results"
    fi
  done
  done_stage 4 evaluate
fi
