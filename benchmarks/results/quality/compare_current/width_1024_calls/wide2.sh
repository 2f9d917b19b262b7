#!/bin/bash
# The graph-free groups at --width 1024 that did not finish in wide.sh, one process per group.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl >/dev/null 2>&1
export PYTHONPATH=$(pwd):$(pwd)/benchmarks:$(pwd)/tests:/tmp/site
R=/tmp/results; mkdir -p $R/logs; cp runs/dev/commit.txt $R/commit.txt
nvidia-smi --query-gpu=name --format=csv,noheader > $R/device.txt
C="python benchmarks/compare_shared.py --data .data --device cuda --threads 1 --width 1024"
start=$(date +%s)
pids=()
run() { local out=$1; shift; $C --out $R/$out "$@" > $R/logs/$out.log 2>&1 & pids+=($!); }
for g in ne ne-nontrivial ne-features,ne-nontrivial-features; do
  run ogb_cs_$g --layout ogb --datasets coauthor_cs --methods $g
  run ogb_ac_$g --layout ogb --datasets amazon_computers --methods $g
done
for g in ne ne-nontrivial ne-features ne-nontrivial-features ne-svd; do run npz_ap_$g --layout npz --datasets amazon_photo --methods $g; done
for g in ne ne-nontrivial ne-features; do run npz_ac_$g --layout npz --datasets amazon_computers --methods $g; done
for g in ne ne-nontrivial ne-svd; do run npz_cs_$g --layout npz --datasets coauthor_cs --methods $g; done
( sleep ${LIMIT:-530}; pkill -f compare_shared.py ) &
killer=$!
wait "${pids[@]}"
kill $killer 2>/dev/null
echo "elapsed $(( $(date +%s) - start )) s" > $R/elapsed.txt
tar czf $OUT/results.tgz -C $R . && cat $R/elapsed.txt && for f in $R/*/*/compare.log; do echo "$f: $(tail -1 $f)"; done
