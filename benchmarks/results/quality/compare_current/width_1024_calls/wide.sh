#!/bin/bash
# Graph-free Neural Eigenmap groups of bench compare at --width 1024 (the capacity sweep's choice), both layouts, split into processes.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl >/dev/null 2>&1
export PYTHONPATH=$(pwd):$(pwd)/benchmarks:$(pwd)/tests:/tmp/site
R=/tmp/results; mkdir -p $R/logs; cp runs/dev/commit.txt $R/commit.txt
nvidia-smi --query-gpu=name --format=csv,noheader > $R/device.txt
G=ne,ne-nontrivial,ne-features,ne-nontrivial-features
C="python benchmarks/compare_shared.py --data .data --device cuda --threads 1 --width 1024"
start=$(date +%s)
pids=()
run() { local out=$1; shift; $C --out $R/$out "$@" > $R/logs/$out.log 2>&1 & pids+=($!); }
run ogb --layout ogb --parallel 5 --methods $G
run npz --layout npz --parallel 3 --datasets cora citeseer amazon_photo --methods $G,ne-svd
run cs_1 --layout npz --datasets coauthor_cs --methods ne,ne-nontrivial,ne-svd
run cs_2 --layout npz --datasets coauthor_cs --methods ne-features
run cs_3 --layout npz --datasets coauthor_cs --methods ne-nontrivial-features
run ac_1 --layout npz --datasets amazon_computers --methods ne,ne-nontrivial
run ac_2 --layout npz --datasets amazon_computers --methods ne-features
run ac_3 --layout npz --datasets amazon_computers --methods ne-nontrivial-features
run ac_4 --layout npz --datasets amazon_computers --methods ne-svd
( sleep ${LIMIT:-540}; pkill -f compare_shared.py ) &
killer=$!
wait "${pids[@]}"
kill $killer 2>/dev/null
echo "elapsed $(( $(date +%s) - start )) s" > $R/elapsed.txt
tar czf $OUT/results.tgz -C $R . && cat $R/elapsed.txt && for f in $R/*/*/compare.log; do echo "$f: $(tail -1 $f)"; done
