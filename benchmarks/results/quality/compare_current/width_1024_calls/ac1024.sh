#!/bin/bash
# npz amazon_computers: the graph-free groups ne and ne-features at --width 1024, one process per group.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl >/dev/null 2>&1
export PYTHONPATH=$(pwd):$(pwd)/benchmarks:$(pwd)/tests:/tmp/site
R=/tmp/results; mkdir -p $R/logs; cp runs/dev/commit.txt $R/commit.txt
nvidia-smi --query-gpu=name --format=csv,noheader > $R/device.txt
C="python benchmarks/compare_shared.py --data .data --device cuda --width 1024"
start=$(date +%s)
pids=()
run() { local out=$1; shift; $C --out $R/$out "$@" > $R/logs/$out.log 2>&1 & pids+=($!); }
run npz_ac_ne --layout npz --datasets amazon_computers --methods ne --threads 8
run npz_ac_ne-features --layout npz --datasets amazon_computers --methods ne-features --threads 8
( sleep ${LIMIT:-540}; pkill -f compare_shared.py ) &
killer=$!
wait "${pids[@]}"
kill $killer 2>/dev/null
echo "elapsed $(( $(date +%s) - start )) s" > $R/elapsed.txt
tar czf $OUT/results.tgz -C $R . && cat $R/elapsed.txt && for f in $R/*/*/compare.log; do echo "$f: $(tail -1 $f)"; done
