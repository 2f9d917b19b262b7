#!/bin/bash
# Capacity sweep, second fit seed: sizes 256x2 (default) and 1024x2 (chosen), every case, one process per job.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl >/dev/null 2>&1
export PYTHONPATH=$(pwd):$(pwd)/benchmarks:$(pwd)/tests:/tmp/site
R=/tmp/results; mkdir -p $R/cap; cp runs/dev/commit.txt $R/commit.txt
nvidia-smi --query-gpu=name --format=csv,noheader > $R/device.txt
start=$(date +%s)
( sleep ${LIMIT:-530}; pkill -f capacity_sweep.py ) &
killer=$!
python benchmarks/capacity_sweep.py --data .data --out $R/cap --device cuda --parallel 16 --threads 1 --sizes 256x2 1024x2 --seed 1 > $R/cap.log 2>&1
kill $killer 2>/dev/null
python benchmarks/capacity_sweep.py --data .data --out $R/cap --summarize-only > /dev/null 2>&1
echo "elapsed $(( $(date +%s) - start )) s" > $R/elapsed.txt
tar czf $OUT/results.tgz -C $R . && cat $R/elapsed.txt && grep -c '^done' $R/cap.log && tail -5 $R/cap.log
