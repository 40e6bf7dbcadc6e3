#!/usr/bin/env bash
# AN4 recipe: download AN4, prepare manifests, train on CPU, evaluate on test, export the small shipped-size model.
#
#   bash recipes/an4/run.sh [--data data/an4] [--stage 1 --stop-stage 4] [--exp exp/an4]
#
# Stages (each leaves a .done marker in the experiment folder, holding the settings it ran with; a stage
# is skipped when its marker holds the settings of this run, and runs again, with those after it, when
# they differ: a new --data, --noise or --manifests prepares again). Stages 0-5 run by default; 6 when asked:
#   0 download  AN4 (CMU's census database, free: http://www.speech.cs.cmu.edu/databases/an4/, an4_sphere.tar.gz,
#               64 MB) into --data, resumable and checksummed (recipes/an4/download.py); nothing when it is there
#   1 prepare   manifests/an4/{train,dev,test}.jsonl from the original CMU layout, and the noise
#               recordings and RIRs split by recording (recipes/an4/split_noise.py) into
#               manifests/an4/noise/{noise,rir}_{train,test}.jsonl: training hears only the _train ones,
#               bench/robustness.py tests on the held-out _test ones
#   2 train     python -m asr.train (best checkpoint chosen on dev, never on test; resumes EXP/last.pt),
#               augmented with the training noise and RIRs (without a noise folder: synthetic coloured noise
#               and no reverberation, said in a note)
#   3 evaluate  greedy WER/CER on test -> EXP/eval_test/{hypotheses.txt,errors.jsonl,summary.json}
#   4 lm        word LMs (orders 2-4) from the training transcripts; order, alpha, beta chosen on dev;
#               beam + LM on test -> EXP/eval_test_beam
#   5 export    int8 model (fp16 where int8 changes dev's greedy transcripts) + its LM, decoding settings and
#               numbers in the metadata -> EXP/model.pt
#   6 stream    (only with --stop-stage 6) the streaming model (LC-BLSTM, asr.streaming): stage 2's best.pt (or --stream-init) fine-tuned
#               with chunks of --chunk-frames and --right-context-frames, the same augmentation, in
#               --stream-minutes; greedy and beam + LM (stage 5's LM or --stream-lm, alpha/beta tuned on dev)
#               on test; int8 -> EXP/stream/model.pt
#
# Options (relative paths are the caller's; defaults are relative to the repository, so the recipe runs
# from any folder):
#   --data DIR          AN4 in its original layout (etc/, wav/)      default: ../shared/data/an4 where it
#                       exists (this project's machines), else data/an4 (where stage 0 downloads it)
#   --noise DIR         noise.jsonl + rir.jsonl, split in stage 1    default: ../shared/data/noise
#   --exp DIR           experiment folder                            default: exp/an4
#   --manifests DIR     where stage 1 writes the manifests           default: manifests/an4
#   --stage N           first stage to run                           default: 0
#   --stop-stage N      last stage to run                            default: 5 (6: the streaming model too)
#   --epochs N          training epochs                              default: 95
#   --max-minutes M     training time budget (wall minutes)          default: 44
#   --seed N            seed of everything random                    default: 0
#   --init CKPT         stage 2 fine-tunes CKPT (e.g. asr/assets/an4.pt) on today's features instead of
#                       training from scratch (asr.train --init CKPT --init-features new)   default: none
#   --lr LR             stage 2 peak learning rate                    default: 1e-3 (asr.train's)
#   --average-last N    stage 2: the mean of the last N epochs' weights becomes best.pt if better on dev
#                                                                     default: 0 (none)
#   --train-args "FLAGS"  more asr.train flags for stage 2, e.g. "--telephone-prob 0.1 --warmup-steps 50"
#   --stream-init CKPT  model stage 6 fine-tunes                     default: EXP/best.pt
#   --stream-lm LM      word LM of the streaming model               default: EXP/an4_lm.arpa.gz
#   --chunk-frames N    stage 6: output frames (40 ms) per chunk       default: 6
#   --right-context-frames N   stage 6: frames each chunk looks ahead  default: 5
#   --stream-epochs N   stage 6 epochs                               default: 40
#   --stream-minutes M  stage 6 training time budget                 default: 35
#   --stream-lr LR      stage 6 peak learning rate                   default: 5e-4
#   --threads N         torch threads of every command: --threads N to asr.train and asr.evaluate, OMP_NUM_THREADS
#                       to the rest   default: each command's own choice from the usable cores (1 on 2 or fewer)
#   -h, --help          this text
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"  # works from a checkout, installed or not
data=$repo/../shared/data/an4
[ -d "$data" ] || data=$repo/data/an4
noise=$repo/../shared/data/noise
exp=$repo/exp/an4
manifests=$repo/manifests/an4
stage=0
stop_stage=5
epochs=95
max_minutes=44
seed=0
stream_init=
stream_lm=
chunk_frames=6
right_context_frames=5
stream_epochs=40
stream_minutes=35
stream_lr=5e-4
init=
lr=
average_last=0
train_args=
thread_count=

# abspath P: P against the caller's folder (the recipe works in the repository from here on)
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
while [ $# -gt 0 ]; do
  value=${2-}  # the flag's value, where it takes one (checked below, once the flag is known)
  case "$1" in
    --data) data=$(abspath "$value") ;;
    --noise) noise=$(abspath "$value") ;;
    --exp) exp=$(abspath "$value") ;;
    --manifests) manifests=$(abspath "$value") ;;
    --stage) stage=$value ;;
    --stop-stage) stop_stage=$value ;;
    --epochs) epochs=$value ;;
    --max-minutes) max_minutes=$value ;;
    --seed) seed=$value ;;
    --init) init=$(abspath "$value") ;;
    --lr) lr=$value ;;
    --average-last) average_last=$value ;;
    --train-args) train_args=$value ;;
    --stream-init) stream_init=$(abspath "$value") ;;
    --stream-lm) stream_lm=$(abspath "$value") ;;
    --chunk-frames) chunk_frames=$value ;;
    --right-context-frames) right_context_frames=$value ;;
    --stream-epochs) stream_epochs=$value ;;
    --stream-minutes) stream_minutes=$value ;;
    --stream-lr) stream_lr=$value ;;
    --threads) thread_count=$value ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  [ $# -gt 1 ] || { echo "run.sh: $1 needs a value" >&2; exit 2; }
  # a value that is a flag: the value was left out (--data --exp e); --train-args passes flags on
  [[ "$1" = --train-args || ! "$value" =~ ^--[a-z] ]] ||
    { echo "run.sh: $1 needs a value (got $value, a flag)" >&2; exit 2; }
  shift 2
done
. "$repo/recipes/options.sh"  # check_stages, check_threads
check_stages 0 6 "$stage" "$stop_stage"
check_threads "$thread_count"
cd "$repo"
threads=()  # torch threads: given to every python -m asr.* below (OMP_NUM_THREADS for those without --threads)
if [ -n "$thread_count" ]; then
  threads=(--threads "$thread_count")
  export OMP_NUM_THREADS="$thread_count"
fi

mkdir -p "$exp"
# The settings each stage depends on; a stage's settings include those of the stages before it.
settings0="data=$data"
settings1="data=$data manifests=$manifests noise=$noise"
settings2="$settings1 epochs=$epochs max_minutes=$max_minutes seed=$seed init=$init lr=$lr average_last=$average_last train_args=$train_args"
settings3=$settings2
settings4=$settings3
settings5=$settings4
stream_init=${stream_init:-$exp/best.pt}
stream_lm=${stream_lm:-$exp/an4_lm.arpa.gz}
settings6="$settings5 stream_init=$stream_init stream_lm=$stream_lm chunk_frames=$chunk_frames right_context_frames=$right_context_frames"
settings6="$settings6 stream_epochs=$stream_epochs stream_minutes=$stream_minutes stream_lr=$stream_lr"
# run_stage N NAME: true if stage N is selected and not done yet with this run's settings
run_stage() {
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ] || return 1
  local marker=$exp/.done.$1.$2 name=settings$1
  local wanted=${!name}
  if [ -f "$marker" ]; then
    if [ ! -s "$marker" ] || [ "$(cat "$marker")" = "$wanted" ]; then  # an empty marker: an older run.sh
      echo "stage $1 ($2): already done, skipping"; return 1
    fi
    echo "stage $1 ($2): done before with other settings ($(cat "$marker")); running it again"
  fi
  echo "stage $1: $2"
}
done_stage() { local name=settings$1; printf '%s\n' "${!name}" > "$exp/.done.$1.$2"; }

augment=()
if [ -d "$noise" ]; then
  augment+=(--noise "$manifests/noise/noise_train.jsonl" --rir "$manifests/noise/rir_train.jsonl")
elif [ "$stage" -le 6 ] && [ "$stop_stage" -ge 1 ] && { [ "$stage" -le 2 ] || [ "$stop_stage" -ge 6 ]; }; then
  # stages 1, 2 and 6 use the noise
  echo "note: no noise folder at $noise: training adds synthetic coloured noise and no reverberation" \
    "(give --noise DIR holding noise.jsonl and rir.jsonl for real noise and rooms)" >&2
fi

if run_stage 0 download; then
  python recipes/an4/download.py --out "$data"
  done_stage 0 download
fi

if run_stage 1 prepare; then
  python recipes/an4/prepare.py --data "$data" --out "$manifests"
  # Noise and RIRs held out by recording, for bench/robustness.py; training gets the rest.
  if [ -d "$noise" ]; then
    python recipes/an4/split_noise.py --noise "$noise" --out "$manifests/noise"
  fi
  done_stage 1 prepare
fi

# Stages 2-5 read the manifests that stage 1 writes.
if [ "$stop_stage" -ge 2 ]; then
  needed=(train dev test)
  [ -d "$noise" ] && needed+=(noise/noise_train noise/rir_train)
  for name in "${needed[@]}"; do
    if [ ! -f "$manifests/$name.jsonl" ]; then
      echo "run.sh: $manifests/$name.jsonl does not exist; make it with stage 1:" \
        "bash recipes/an4/run.sh --stage 1 --stop-stage 1 --data DIR --manifests $manifests" >&2
      exit 2
    fi
  done
fi

if run_stage 2 train; then
  resume=()
  [ -f "$exp/last.pt" ] && resume=(--resume)
  tune=()
  [ -n "$init" ] && tune+=(--init "$init" --init-features new)
  [ -n "$lr" ] && tune+=(--lr "$lr")
  [ "$average_last" != 0 ] && tune+=(--average-last "$average_last")
  read -r -a extra <<< "$train_args"
  tune+=(${extra[@]+"${extra[@]}"})
  python -m asr.train "${threads[@]}" --train "$manifests/train.jsonl" --dev "$manifests/dev.jsonl" --out "$exp" \
    --epochs "$epochs" --max-minutes "$max_minutes" --batch-seconds 90 --seed "$seed" "${augment[@]}" \
    ${tune[@]+"${tune[@]}"} "${resume[@]}"
  # A --max-minutes stop is the normal end of this budgeted stage, but only once an epoch has given a best.pt.
  if [ ! -f "$exp/best.pt" ]; then
    echo "stage 2: no epoch finished within --max-minutes $max_minutes, so there is no $exp/best.pt;" \
      "rerun with a larger --max-minutes (training resumes from $exp/last.pt)" >&2
    exit 1
  fi
  done_stage 2 train
fi

if run_stage 3 evaluate; then
  python -m asr.evaluate "${threads[@]}" --model "$exp/best.pt" --manifest "$manifests/test.jsonl" --decoder greedy \
    --out "$exp/eval_test" | tee "$exp/eval_test.log"
  done_stage 3 evaluate
fi

if run_stage 4 lm; then
  # Word LMs of orders 2-4 from the training transcripts; the order and alpha/beta are chosen on dev.
  mkdir -p "$exp/lm"
  for order in 2 3 4; do
    python -m asr.lm build --order "$order" --manifest "$manifests/train.jsonl" "$exp/lm/${order}gram.arpa.gz"
    python -m asr.evaluate "${threads[@]}" --model "$exp/best.pt" --manifest "$manifests/dev.jsonl" --decoder beam \
      --lm "$exp/lm/${order}gram.arpa.gz" --tune-lm --out "$exp/lm/tune_${order}gram" | tail -n 1
  done
  python - "$exp/lm" <<'PY'
import json, sys
from pathlib import Path
lm = Path(sys.argv[1])
rows = [{"order": o, **json.loads((lm / f"tune_{o}gram" / "lm_weights.json").read_text())} for o in (2, 3, 4)]
best = min(rows, key=lambda r: (r["wer"], r["order"]))  # ties: the smaller LM
choice = {"order": best["order"], "lm": f"{best['order']}gram.arpa.gz", "alpha": best["alpha"], "beta": best["beta"],
          "dev_wer": best["wer"]}
(lm / "choice.json").write_text(json.dumps(choice, indent=2) + "\n")
print("chosen on dev:", choice)
PY
  read -r lm_file alpha beta < <(python -c "import json; c=json.load(open('$exp/lm/choice.json')); print(c['lm'], c['alpha'], c['beta'])")
  python -m asr.evaluate "${threads[@]}" --model "$exp/best.pt" --manifest "$manifests/test.jsonl" --decoder beam --beam-size 32 \
    --lm "$exp/lm/$lm_file" --alpha "$alpha" --beta "$beta" --out "$exp/eval_test_beam" | tee "$exp/eval_test_beam.log"
  done_stage 4 lm
fi

if run_stage 5 export; then
  # The int8 model (per-row scales: half the size of fp16), or fp16 where int8 decodes dev otherwise, and its
  # LM side by side; the model's metadata names the LM and the weights tuned on dev.
  cp "$exp/lm/$(python -c "import json; print(json.load(open('$exp/lm/choice.json'))['lm'])")" "$exp/an4_lm.arpa.gz"
  meta=$(python - "$exp" <<'PY'
import json, sys
exp = sys.argv[1]
greedy = json.load(open(f"{exp}/eval_test/summary.json"))
beam = json.load(open(f"{exp}/eval_test_beam/summary.json"))
choice = json.load(open(f"{exp}/lm/choice.json"))
print(json.dumps({
    "data": "AN4 (CMU), train minus 6 dev speakers",
    "precision": "int8", "fp32_test_wer_greedy": greedy["wer"], "fp32_test_cer_greedy": greedy["cer"],
    "fp32_test_wer_beam_lm": beam["wer"], "fp32_test_cer_beam_lm": beam["cer"],
    "decoding": {"decoder": "beam", "beam_size": 32, "lm": "an4_lm.arpa.gz", "alpha": choice["alpha"], "beta": choice["beta"]},
}))
PY
)
  # int8 where it decodes dev (greedy) as best.pt does; where it does not, fp16 (twice the size, no loss).
  python -m asr.evaluate "${threads[@]}" --model "$exp/best.pt" --manifest "$manifests/dev.jsonl" --decoder greedy \
    --out "$exp/eval_dev_best_greedy" > /dev/null
  python -m asr.checkpoint "$exp/best.pt" "$exp/model.pt" --precision int8 --metadata "$meta"
  python -m asr.evaluate "${threads[@]}" --model "$exp/model.pt" --manifest "$manifests/dev.jsonl" --decoder greedy \
    --out "$exp/eval_dev_int8_greedy" > /dev/null
  if ! cmp -s "$exp/eval_dev_best_greedy/hypotheses.txt" "$exp/eval_dev_int8_greedy/hypotheses.txt"; then
    wers=$(python -c "import json, sys; print(*(json.load(open(f'{sys.argv[1]}/eval_dev_{m}_greedy/summary.json'))['wer']
           for m in ('int8', 'best')))" "$exp")
    echo "int8 weights change dev's greedy transcripts (WER ${wers% *}% vs ${wers#* }% for best.pt): exporting fp16 instead"
    meta=$(python -c "import json, sys; m = json.loads(sys.argv[1]); m['precision'] = 'fp16'; print(json.dumps(m))" "$meta")
    python -m asr.checkpoint "$exp/best.pt" "$exp/model.pt" --precision fp16 --metadata "$meta"
  fi
  for set in dev test; do
    python -m asr.evaluate "${threads[@]}" --model "$exp/model.pt" --manifest "$manifests/$set.jsonl" --decoder greedy \
      --out "$exp/eval_${set}_shipped_greedy" | sed "s/^/$set, shipped model, greedy: /"
    python -m asr.evaluate "${threads[@]}" --model "$exp/model.pt" --manifest "$manifests/$set.jsonl" \
      --out "$exp/eval_${set}_shipped" | sed "s/^/$set, shipped model, its default decoding: /"
  done
  echo "to ship it: cp $exp/model.pt asr/assets/an4.pt && cp $exp/an4_lm.arpa.gz asr/assets/an4_lm.arpa.gz"
  done_stage 5 export
fi

if run_stage 6 stream; then
  # Same augmentation as stage 2; a lower peak learning rate and a short warm-up: the weights start trained.
  resume=()
  [ -f "$exp/stream/last.pt" ] && resume=(--resume)
  python -m asr.train "${threads[@]}" --train "$manifests/train.jsonl" --dev "$manifests/dev.jsonl" --out "$exp/stream" \
    --init "$stream_init" --chunk-frames "$chunk_frames" --right-context-frames "$right_context_frames" \
    --epochs "$stream_epochs" --max-minutes "$stream_minutes" --lr "$stream_lr" --warmup-steps 50 --batch-seconds 90 \
    --seed "$seed" "${augment[@]}" "${resume[@]}"
  python -m asr.evaluate "${threads[@]}" --model "$exp/stream/best.pt" --manifest "$manifests/test.jsonl" --decoder greedy \
    --out "$exp/stream/eval_test" | tee "$exp/stream/eval_test.log"
  python -m asr.evaluate "${threads[@]}" --model "$exp/stream/best.pt" --manifest "$manifests/dev.jsonl" --decoder beam \
    --lm "$stream_lm" --tune-lm --out "$exp/stream/tune_lm" | tail -n 1
  read -r alpha beta < <(python -c "import json; c=json.load(open('$exp/stream/tune_lm/lm_weights.json')); print(c['alpha'], c['beta'])")
  python -m asr.evaluate "${threads[@]}" --model "$exp/stream/best.pt" --manifest "$manifests/test.jsonl" --decoder beam --beam-size 32 \
    --lm "$stream_lm" --alpha "$alpha" --beta "$beta" --out "$exp/stream/eval_test_beam" \
    | tee "$exp/stream/eval_test_beam.log"
  cp "$stream_lm" "$exp/stream/an4_lm.arpa.gz"
  meta=$(python - "$exp/stream" "$alpha" "$beta" <<'PY'
import json, sys
exp, alpha, beta = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
greedy = json.load(open(f"{exp}/eval_test/summary.json"))
beam = json.load(open(f"{exp}/eval_test_beam/summary.json"))
print(json.dumps({
    "data": "AN4 (CMU), train minus 6 dev speakers", "streaming": True,
    "precision": "int8", "fp32_test_wer_greedy": greedy["wer"], "fp32_test_cer_greedy": greedy["cer"],
    "fp32_test_wer_beam_lm": beam["wer"], "fp32_test_cer_beam_lm": beam["cer"],
    "decoding": {"decoder": "beam", "beam_size": 32, "lm": "an4_lm.arpa.gz", "alpha": alpha, "beta": beta},
}))
PY
)
  python -m asr.checkpoint "$exp/stream/best.pt" "$exp/stream/model.pt" --precision int8 --metadata "$meta"
  python -m asr.evaluate "${threads[@]}" --model "$exp/stream/model.pt" --manifest "$manifests/test.jsonl" --decoder greedy \
    --out "$exp/stream/eval_test_shipped_greedy" | sed "s/^/test, shipped streaming model, greedy: /"
  echo "to ship it: cp $exp/stream/model.pt asr/assets/an4_stream.pt"
  done_stage 6 stream
fi
