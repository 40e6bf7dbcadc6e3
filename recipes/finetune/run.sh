#!/usr/bin/env bash
# Fine-tune the shipped model on your own recordings, on a CPU: one model file (int8) and its LM beside it, which
# python -m asr.transcribe --model, python -m asr.serve --model and the web page take.
#
#   bash recipes/finetune/run.sh --data DIR [--exp exp/finetune] [--test-speakers A,B] ...
#
# DIR is a corpus in any layout `python -m asr.data import` reads (Hugging Face audiofolder, NeMo, lhotse, Kaldi,
# Common Voice, LibriSpeech, audio with same-named .txt/.lab files). Stages (each leaves a .done marker holding the
# settings it ran with; a stage whose settings changed, or that failed or was stopped, runs again, with those after
# it):
#   1 import    python -m asr.data import DIR EXP/import (every utterance checked: one line names a bad row)
#   2 split     EXP/sets/{train,dev,test}.jsonl: the corpus's own sets where it has them (all, train or training,
#               or its only set; dev, validation, valid or val; test or testing), else held out of its training set
#               (--dev-*/--test-* flags; by default 10% of the utterances for test, 10% of the rest for dev); with
#               AN4 manifests (--an4), a share of AN4's training utterances mixed into train_mix.jsonl: a guard
#               against forgetting (the other: --init-decay, in stage 3)
#   3 train     python -m asr.train --init CKPT: the model's weights fine-tuned on its own features and
#               normalisation (--init-features), at a lower learning rate than AN4's (1e-3), augmented as the AN4
#               recipe is (real noise and rooms from --noise, speed, SpecAugment, clipping, telephone, codecs);
#               best.pt chosen on dev; a run of it that was stopped goes on from its last.pt when run again with
#               the same settings
#   4 lm        a 3-gram LM of your training transcripts, interpolated with the shipped LM (--init-lm), its
#               weight chosen by perplexity on dev (python -m asr.lm mix)
#   5 tune      beam search + that LM: alpha and beta chosen on dev (python -m asr.evaluate --tune-lm; --alpha
#               overrides dev's alpha)
#   6 export    EXP/model.pt (int8; its metadata recommends the beam search, the LM and its weights) and
#               EXP/model_lm.arpa.gz beside it
#   7 evaluate  before (CKPT) and after (EXP/model.pt), greedy and each model's default decoding, on test (dev
#               when there is no test set) and, with --an4, on AN4 test: the table is printed and EXP/RESULTS.md,
#               with the most frequent errors after (which word was heard as which, how often)
#
# Options (relative paths are the caller's):
#   --data DIR            your recordings (required for stage 1)
#   --from FORMAT         their layout (python -m asr.data import --help)    default: detected
#   --exp DIR             experiment folder: new, empty, or this recipe's     default: exp/finetune
#   --init CKPT           the model fine-tuned                               default: asr/assets/an4.pt
#   --init-lm LM          the LM yours is interpolated with                  default: asr/assets/an4_lm.arpa.gz
#   --init-features F     init: keep CKPT's features and normalisation; new: today's front end, normalised on
#                         the training mix (the weights must learn it anew)  default: init
#   --dev-speakers A,B    speakers held out as dev           default: --dev-fraction 0.1 (of what test leaves)
#   --test-speakers A,B   speakers held out as test          default: --test-fraction 0.1
#   --dev-fraction F      share held out as dev              --test-fraction F   share held out as test
#   --by-speaker          the shares are whole speakers (speaker-disjoint; needs a speaker per utterance)
#   --an4 DIR             AN4 manifests (train.jsonl, test.jsonl: recipes/an4/prepare.py)   default: manifests/an4
#                         where it holds them, else none ("none": none)
#   --an4-share F         AN4 training utterances mixed in, as a share of yours              default: 0.5
#   --init-decay D        after each step every weight moves lr x D of the way back to CKPT's (asr.train
#                         --init-decay: a guard against forgetting that needs no AN4 data; 0: off)
#                         default: auto: 10 with AN4's manifests and an --an4-share above 0, else 30
#   --alpha A|dev         the LM weight the model recommends: A, or dev's pick (dev holds the training speakers,
#                         where every weight can score the same and the least is kept; a larger one helps speakers
#                         never heard and costs AN4: bench/results/fsdd_finetune_alpha.md)   default: dev
#   --noise DIR           noise.jsonl and rir.jsonl for augmentation         default: ../shared/data/noise
#   --epochs N            fine-tuning epochs                                 default: 15
#   --max-minutes M       fine-tuning time budget (wall minutes)             default: 10
#   --lr LR               peak learning rate                                 default: 3e-4
#   --warmup-steps N      learning-rate warm-up                   default: a tenth of the steps, at most 50
#   --batch-seconds S     padded audio seconds per batch                     default: 90
#   --train-args "FLAGS"  more python -m asr.train flags for stage 3, after the recipe's (a later flag wins), e.g.
#                         "--telephone-prob 0.5 --speed-factors 0.8 1 1.2"   default: none
#   --seed N              seed of everything random                          default: 0
#   --threads N           torch threads of every command: --threads N to asr.train and asr.evaluate, OMP_NUM_THREADS
#                         to the rest          default: each command's own choice from the usable cores (1 on 2 or fewer)
#   --stage N             first stage to run                                 default: 1
#   --stop-stage N        last stage to run                                  default: 7
#   -h, --help            this text
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
data=
from=
exp=$PWD/exp/finetune
init=$repo/asr/assets/an4.pt
init_lm=$repo/asr/assets/an4_lm.arpa.gz
init_features=init
dev_speakers=; test_speakers=; dev_fraction=; test_fraction=; by_speaker=
an4=auto
an4_share=0.5
init_decay=auto
alpha=dev
noise=$repo/../shared/data/noise
epochs=15
max_minutes=10
lr=3e-4
warmup=
batch_seconds=90
train_args=
seed=0
thread_count=
stage=1
stop_stage=7

abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
while [ $# -gt 0 ]; do
  value=${2-}  # the flag's value, where it takes one (checked below, once the flag is known)
  case "$1" in
    --data) data=$(abspath "$value") ;;
    --from) from=$value ;;
    --exp) exp=$(abspath "$value") ;;
    --init) init=$(abspath "$value") ;;
    --init-lm) init_lm=$(abspath "$value") ;;
    --init-features) init_features=$value ;;
    --dev-speakers) dev_speakers=$value ;;
    --test-speakers) test_speakers=$value ;;
    --dev-fraction) dev_fraction=$value ;;
    --test-fraction) test_fraction=$value ;;
    --by-speaker) by_speaker=--by-speaker; shift; continue ;;
    --an4) an4=$value; [ "$value" = none ] || an4=$(abspath "$value") ;;
    --an4-share) an4_share=$value ;;
    --init-decay) init_decay=$value ;;
    --alpha) alpha=$value ;;
    --noise) noise=$(abspath "$value") ;;
    --epochs) epochs=$value ;;
    --max-minutes) max_minutes=$value ;;
    --lr) lr=$value ;;
    --warmup-steps) warmup=$value ;;
    --batch-seconds) batch_seconds=$value ;;
    --train-args) train_args=$value ;;
    --seed) seed=$value ;;
    --threads) thread_count=$value ;;
    --stage) stage=$value ;;
    --stop-stage) stop_stage=$value ;;
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
check_stages 1 7 "$stage" "$stop_stage"
check_threads "$thread_count"
if ! [[ "$an4_share" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]]; then
  echo "run.sh: --an4-share must be a number from 0, got '$an4_share'" >&2; exit 2
fi
if [ "$init_decay" != auto ] && ! [[ "$init_decay" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]]; then
  echo "run.sh: --init-decay must be auto or a number from 0, got '$init_decay'" >&2; exit 2
fi
if [ "$alpha" != dev ] && ! [[ "$alpha" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]]; then
  echo "run.sh: --alpha must be dev or a number from 0, got '$alpha'" >&2; exit 2
fi
[ "$alpha" != dev ] || alpha=  # dev's pick: stage 5's
case $init_features in
  init|new) ;;
  *) echo "run.sh: --init-features must be init or new, got '$init_features'" >&2; exit 2 ;;
esac
an4_given=$an4
if [ "$an4" = auto ]; then
  an4=none
  [ -f "$repo/manifests/an4/train.jsonl" ] && [ -f "$repo/manifests/an4/test.jsonl" ] && an4=$repo/manifests/an4
fi
if [ "$an4" != none ] && { [ ! -f "$an4/train.jsonl" ] || [ ! -f "$an4/test.jsonl" ]; }; then
  echo "run.sh: --an4 $an4 lacks train.jsonl or test.jsonl (make them: python recipes/an4/prepare.py --out DIR)" >&2
  exit 2
fi
if [ "$init_decay" = auto ]; then  # the pull: beside AN4's utterances, or alone where there are none (stronger)
  init_decay=10
  { [ "$an4" = none ] || python -c "import sys; sys.exit(float(sys.argv[1]) > 0)" "$an4_share"; } && init_decay=30
  decay_given="--init-decay auto ($init_decay)"
else
  decay_given="--init-decay $init_decay"
fi
if [[ "$lr" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$ ]] &&
    ! python -c "import sys; sys.exit(float(sys.argv[1]) * float(sys.argv[2]) > 1)" "$lr" "$init_decay"; then
  echo "run.sh: $decay_given with --lr $lr: a step would move the weights past the model fine-tuned's" \
    "(lr x init-decay must be at most 1)" >&2; exit 2
fi
threads=()  # torch threads: given to every python -m asr.* below (OMP_NUM_THREADS for those without --threads)
if [ -n "$thread_count" ]; then
  threads=(--threads "$thread_count")
  export OMP_NUM_THREADS="$thread_count"
fi
# EXP is new, empty, or this recipe's (.finetune; .done.1.import: made before .finetune was): the stages remove and
# replace import/, sets/, train/... in it, which in a folder of something else would be someone's files.
if [ -e "$exp" ] && [ ! -f "$exp/.finetune" ] && [ ! -f "$exp/.done.1.import" ]; then
  [ -d "$exp" ] || { echo "run.sh: --exp $exp is a file, not a folder" >&2; exit 2; }
  held=$(cd "$exp" && ls -A | head -n 4 | paste -sd, - | sed 's/,/, /g; s/^\(\([^,]*, \)\{3\}\).*/\1.../')
  if [ -n "$held" ]; then
    echo "run.sh: --exp $exp holds files of something else ($held): give a new or empty folder, or one" \
      "this recipe made" >&2; exit 2
  fi
fi
cd "$repo"
mkdir -p "$exp"
touch "$exp/.finetune"

settings1="data=$data from=$from"
settings2="$settings1 dev=$dev_speakers/$dev_fraction test=$test_speakers/$test_fraction $by_speaker an4=$an4"
settings2="$settings2 an4_share=$an4_share seed=$seed"
settings3="$settings2 init=$init init_features=$init_features noise=$noise epochs=$epochs max_minutes=$max_minutes"
settings3="$settings3 lr=$lr warmup=$warmup init_decay=$init_decay"
settings3="$settings3 batch_seconds=$batch_seconds${train_args:+ train_args=$train_args}"
settings4="$settings3 init_lm=$init_lm"
settings5=$settings4; settings6="$settings5${alpha:+ alpha=$alpha}"; settings7=$settings6
# run_stage N NAME: true if stage N is to run; its marker is removed as it starts (kept in $was_done), so that a run
# of it that fails or is stopped leaves none: the next run runs it again, whatever the settings then.
run_stage() {
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ] || return 1
  local marker=$exp/.done.$1.$2 name=settings$1
  was_done=
  if [ -f "$marker" ]; then
    if [ "$(cat "$marker")" = "${!name}" ]; then echo "stage $1 ($2): already done, skipping"; return 1; fi
    echo "stage $1 ($2): done before with other settings; running it again"
    was_done=$(cat "$marker"); rm -f "$marker"
  fi
  echo "stage $1: $2"
}
# done_stage N NAME: stage N's marker, holding its settings; the stages after it, made from its last output, run again
done_stage() {
  local name=settings$1 later
  for later in $(seq $(($1 + 1)) 7); do rm -f "$exp"/.done."$later".*; done
  printf '%s\n' "${!name}" > "$exp/.done.$1.$2"
}
need() { [ -f "$1" ] || { echo "run.sh: $1 does not exist; run stage $2 first (--stage $2)" >&2; exit 2; }; }

if run_stage 1 import; then
  [ -n "$data" ] || { echo "run.sh: --data DIR is required (your recordings)" >&2; exit 2; }
  # The last import is moved aside, not removed, and put back if this one fails (a mistyped --data, a bad row); not
  # imported beside it and renamed, since the manifests name their cut segments by absolute path.
  [ -d "$exp/import.last" ] && { rm -rf "$exp/import"; mv "$exp/import.last" "$exp/import"; }  # an interrupted run's
  [ -d "$exp/import" ] && mv "$exp/import" "$exp/import.last"
  python -m asr.data import ${from:+--from "$from"} "$data" "$exp/import" || {
    status=$?; rm -rf "$exp/import"; [ ! -d "$exp/import.last" ] || mv "$exp/import.last" "$exp/import"
    [ -z "$was_done" ] || printf '%s\n' "$was_done" > "$exp/.done.1.import"  # the last import's, put back with it
    exit $status; }
  rm -rf "$exp/import.last"
  done_stage 1 import
fi

if run_stage 2 split; then
  imported=$exp/import
  # the corpus's own sets, by the names Hugging Face's splits have too: the first of each list that was imported
  pick() { local name; for name in "$@"; do [ -f "$imported/$name.jsonl" ] && { echo "$name"; return; }; done; return 0; }
  base=$(pick all train training); dev_set=$(pick dev validation valid val); test_set=$(pick test testing)
  found=(); for path in "$imported"/*.jsonl; do [ -f "$path" ] && found+=("$(basename "$path" .jsonl)"); done
  [ ${#found[@]} -gt 0 ] || need "$imported/all.jsonl" 1
  if [ -z "$base" ] && [ ${#found[@]} = 1 ] && [ -z "$dev_set$test_set" ]; then base=${found[0]}; fi  # its only set
  if [ -z "$base" ]; then
    echo "run.sh: $imported holds the sets ${found[*]}: stage 2 trains on one called all, train or training, or on" \
      "a corpus's only set (import the one to train on, or name its folder so)" >&2; exit 2
  fi
  unused=()
  for name in "${found[@]}"; do
    case " $base $dev_set $test_set " in *" $name "*) ;; *) unused+=("$imported/$name.jsonl") ;; esac
  done
  [ ${#unused[@]} = 0 ] || echo "note: stage 2 leaves out ${unused[*]} (it uses $base, ${dev_set:-dev} and" \
    "${test_set:-test})" >&2
  rm -rf "$exp/sets"; mkdir -p "$exp/sets"
  flags=(--seed "$seed" ${by_speaker:+"$by_speaker"})
  if [ -z "$dev_set" ]; then
    if [ -n "$dev_speakers" ]; then flags+=(--dev-speakers "$dev_speakers")
    else flags+=(--dev-fraction "${dev_fraction:-0.1}"); fi
  fi
  if [ -z "$test_set" ]; then
    if [ -n "$test_speakers" ]; then flags+=(--test-speakers "$test_speakers")
    elif [ "${test_fraction:-0.1}" != 0 ]; then flags+=(--test-fraction "${test_fraction:-0.1}"); fi
  fi
  if [ -n "$dev_set" ] && [ -n "$test_set" ]; then
    cp "$imported/$base.jsonl" "$exp/sets/train.jsonl"
  else
    python -m asr.data split "$imported/$base.jsonl" "$exp/sets" "${flags[@]}"
  fi
  [ -z "$dev_set" ] || cp "$imported/$dev_set.jsonl" "$exp/sets/dev.jsonl"
  [ -z "$test_set" ] || cp "$imported/$test_set.jsonl" "$exp/sets/test.jsonl"
  cp "$exp/sets/train.jsonl" "$exp/sets/train_mix.jsonl"
  if [ "$an4" = none ]; then
    guard="the guard against forgetting: --init-decay $init_decay"
    [[ "$init_decay" =~ ^[0.]+$ ]] && guard="no guard against forgetting (--init-decay $init_decay)"
    if [ "$an4_given" = none ]; then echo "train_mix: your utterances only (--an4 none; $guard)"
    else echo "train_mix: your utterances only: no AN4 manifests in $repo/manifests/an4 to mix in ($guard;" \
      "make them: python recipes/an4/prepare.py --data AN4_DIR --out manifests/an4, or give --an4 DIR)"; fi
  else
    python - "$exp/sets/train.jsonl" "$an4/train.jsonl" "$an4_share" "$seed" "$exp/sets/train_mix.jsonl" \
      "$init_decay" <<'PY'
import sys
import numpy as np
from asr.data import read_manifest, write_manifest
mine, an4 = read_manifest(sys.argv[1]), read_manifest(sys.argv[2])
n = min(len(an4), round(float(sys.argv[3]) * len(mine)))
picked = sorted(np.random.default_rng(int(sys.argv[4])).permutation(len(an4))[:n].tolist())
write_manifest(sys.argv[5], mine + [an4[i] for i in picked])
guards = [what for what, on in (("they", n), (f"--init-decay {sys.argv[6]}", float(sys.argv[6]))) if on]
said = f"--an4-share {sys.argv[3]}; against forgetting: {' and '.join(guards) or 'nothing'}"
print(f"train_mix: {len(mine)} of your utterances + {n} of AN4's ({said})")
PY
  fi
  done_stage 2 split
fi

if run_stage 3 train; then
  need "$exp/sets/train_mix.jsonl" 2
  augment=()
  if [ -f "$noise/noise.jsonl" ]; then augment+=(--noise "$noise/noise.jsonl"); fi
  if [ -f "$noise/rir.jsonl" ]; then augment+=(--rir "$noise/rir.jsonl"); fi
  [ ${#augment[@]} -gt 0 ] || echo "no noise at $noise: training with synthetic coloured noise, no reverberation"
  if [ -z "$warmup" ]; then  # a tenth of the optimiser steps (about: batches are padded), at most 50
    warmup=$(python - "$exp/sets/train_mix.jsonl" "$batch_seconds" "$epochs" <<'PY'
import sys
from asr.data import read_manifest
seconds = sum(u.duration for u in read_manifest(sys.argv[1]))
print(min(50, int(seconds / float(sys.argv[2]) + 1) * int(sys.argv[3]) // 10))
PY
)
  fi
  read -r -a extra <<< "$train_args"
  # A run of this stage that was stopped (Ctrl-C, a lost session) with these settings and these sets goes on from
  # its last.pt (asr.train --resume, within the same --max-minutes); anything else starts again.
  run_key="$settings3 sets=$(cat "$exp/sets/train_mix.jsonl" "$exp/sets/dev.jsonl" | cksum)"
  resume=(); prior=0
  if [ -f "$exp/train/last.pt" ] && [ "$(cat "$exp/train/recipe_settings" 2>/dev/null)" = "$run_key" ]; then
    echo "stage 3: going on from $exp/train/last.pt (a run stopped with these settings)"
    resume=(--resume); prior=$(cat "$exp/train/stage_seconds" 2>/dev/null || echo 0)
  else
    rm -rf "$exp/train"; mkdir -p "$exp/train"; printf '%s\n' "$run_key" > "$exp/train/recipe_settings"
  fi
  began=$SECONDS
  trap 'echo $((prior + SECONDS - began)) > "$exp/train/stage_seconds"' EXIT  # a stopped run's time counts too
  python -m asr.train ${threads[@]+"${threads[@]}"} --train "$exp/sets/train_mix.jsonl" --dev "$exp/sets/dev.jsonl" --out "$exp/train" \
    --init "$init" --init-features "$init_features" --lr "$lr" --warmup-steps "$warmup" --epochs "$epochs" \
    --max-minutes "$max_minutes" --batch-seconds "$batch_seconds" --seed "$seed" --init-decay "$init_decay" \
    ${augment[@]+"${augment[@]}"} ${extra[@]+"${extra[@]}"} ${resume[@]+"${resume[@]}"}
  trap - EXIT
  echo $((prior + SECONDS - began)) > "$exp/train/stage_seconds"
  [ -f "$exp/train/best.pt" ] || { echo "stage 3: no epoch finished within --max-minutes $max_minutes" >&2; exit 1; }
  done_stage 3 train
fi

if run_stage 4 lm; then
  need "$exp/train/best.pt" 3
  mkdir -p "$exp/lm"
  python -m asr.lm build --order 3 --manifest "$exp/sets/train.jsonl" "$exp/lm/yours.arpa.gz"
  python -m asr.lm mix "$exp/lm/yours.arpa.gz" "$init_lm" "$exp/lm/mixed.arpa.gz" --weights 0.3 0.5 0.7 \
    --tune-on "$exp/sets/dev.jsonl" --manifest | tee "$exp/lm/mix.log"
  done_stage 4 lm
fi

if run_stage 5 tune; then
  need "$exp/lm/mixed.arpa.gz" 4
  python -m asr.evaluate ${threads[@]+"${threads[@]}"} --model "$exp/train/best.pt" --manifest "$exp/sets/dev.jsonl" \
    --decoder beam \
    --lm "$exp/lm/mixed.arpa.gz" --tune-lm --out "$exp/tune" | tail -n 1
  done_stage 5 tune
fi

if run_stage 6 export; then
  need "$exp/tune/lm_weights.json" 5
  cp "$exp/lm/mixed.arpa.gz" "$exp/model_lm.arpa.gz"
  meta=$(python - "$exp" "$init" "$data" "$alpha" <<'PY'
import json, sys
exp, init, data, alpha = sys.argv[1:5]
tuned = json.load(open(f"{exp}/tune/lm_weights.json"))
weight = [line.split()[2] for line in open(f"{exp}/lm/mix.log") if line.startswith("chosen weight")]
print(json.dumps({
    "data": f"{init} fine-tuned on {data}", "precision": "int8", "lm_mix_weight": float(weight[0]) if weight else None,
    "dev_wer_beam_lm": tuned["wer"], **({"dev_alpha": tuned["alpha"]} if alpha else {}),  # dev's pick, overridden
    "decoding": {"decoder": "beam", "beam_size": 32, "lm": "model_lm.arpa.gz",
                 "alpha": float(alpha) if alpha else tuned["alpha"], "beta": tuned["beta"]},
}))
PY
)
  python -m asr.checkpoint "$exp/train/best.pt" "$exp/model.pt" --precision int8 --metadata "$meta"
  done_stage 6 export
fi

if run_stage 7 evaluate; then
  need "$exp/model.pt" 6
  eval_set=test; [ -f "$exp/sets/test.jsonl" ] || eval_set=dev
  sets=("$eval_set=$exp/sets/$eval_set.jsonl")
  [ "$an4" != none ] && sets+=("an4-test=$an4/test.jsonl")
  # Eight evaluations in one process, each exactly `python -m asr.evaluate ARGS` (its main, the door's own code):
  # torch is imported once, not eight times.
  python - "$exp" "$init" "${thread_count:-auto}" "${sets[@]}" <<'PY'
import sys
from asr.evaluate import main
exp, init, threads, sets = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
for name, manifest in (item.split("=", 1) for item in sets):
    for who, model in (("before", init), ("after", f"{exp}/model.pt")):
        for decoding in ("greedy", "default"):
            print(f"evaluate: {name}, {who}, {decoding}", flush=True)
            flags = ["--decoder", "greedy"] if decoding == "greedy" else []
            out = f"{exp}/eval/{name}-{who}-{decoding}"
            flags += [] if threads == "auto" else ["--threads", threads]
            code = main(["--model", model, "--manifest", manifest, *flags, "--out", out])
            if code:
                sys.exit(code)
PY
  python - "$exp" "$eval_set" "$init" "$alpha" <<'PY' | tee "$exp/RESULTS.md"
import json, sys
from pathlib import Path
from asr.evaluate import frequent_errors
exp, eval_set, init, alpha = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
wer = lambda name: json.loads((exp / "eval" / name / "summary.json").read_text())["wer"]
names = {p.name.split("-before-")[0] for p in (exp / "eval").glob("*-before-greedy")}
names = sorted(names, key=lambda n: n != eval_set)  # your set first
print("| set (WER %) | utterances | before: greedy | before: default | after: greedy | after: default |")
print("|---|---:|---:|---:|---:|---:|")
for name in names:
    n = json.loads((exp / "eval" / f"{name}-after-default" / "summary.json").read_text())["utterances"]
    cells = [f"{wer(f'{name}-{who}-{d}'):.2f}" for who in ("before", "after") for d in ("greedy", "default")]
    print(f"| {name}{' (dev: also chose the model)' if name == 'dev' else ''} | {n} | " + " | ".join(cells) + " |")
seconds = (exp / "train" / "stage_seconds").read_text().strip()
dev_alpha = json.loads((exp / "tune" / "lm_weights.json").read_text())["alpha"]
weight = f"alpha {float(alpha)} (--alpha; dev chose {dev_alpha})" if alpha else f"alpha {dev_alpha}, chosen on dev"
print(f"\nbefore: {init}; after: {exp / 'model.pt'} (int8, default decoding: beam + {exp / 'model_lm.arpa.gz'}, "
      f"{weight}).")
print(f"fine-tuning took {int(seconds) / 60:.1f} wall minutes (stage 3).")
print(f"most frequent errors after, on {eval_set} (default decoding: reference -> what was heard, how many): "
      + frequent_errors(exp / "eval" / f"{eval_set}-after-default"))
if "an4-test" in names:
    b, a = wer("an4-test-before-default"), wer("an4-test-after-default")
    print(f"forgetting: AN4 test WER (default decoding) {b:.2f}% -> {a:.2f}% ({a / b if b else float('inf'):.2f}x)")
PY
  echo "use it: python -m asr.transcribe --model $exp/model.pt clip.wav" \
    "(or python -m asr.serve --model $exp/model.pt; its live streams keep the shipped AN4 streaming model," \
    "--stream-model, as this recipe makes no streaming model)"
  done_stage 7 evaluate
fi
