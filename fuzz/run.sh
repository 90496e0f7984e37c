#!/usr/bin/env bash
# Fuzzes every target for SECONDS each (default 60), two at a time, growing
# fuzz/corpus/<target>; then minimises each corpus. Crashes land in
# fuzz/artifacts/<target>/: fix the code, add a regression test, keep the input.
#
#   fuzz/run.sh 600        # ten minutes per target
#   fuzz/run.sh replay     # run every committed corpus once (what CI does)
set -euo pipefail
cd "$(dirname "$0")"
target_dir=../target/fuzz
jobs=${FUZZ_JOBS:-2}
targets=$(cargo +nightly fuzz list)

cargo +nightly fuzz build --target-dir "$target_dir"

if [ "${1:-}" = "replay" ]; then
  for target in $targets; do
    mkdir -p "corpus/$target" "seeds/$target"
    echo "fuzz: replaying $(find "corpus/$target" "seeds/$target" -type f | wc -l) inputs of $target"
    cargo +nightly fuzz run --target-dir "$target_dir" "$target" "corpus/$target" "seeds/$target" -- -runs=0 >/dev/null 2>"../target/fuzz/$target.log" \
      || { cat "../target/fuzz/$target.log"; exit 1; }
  done
  exit 0
fi

seconds=${1:-60}
# shellcheck disable=SC2086
printf '%s\n' $targets | xargs -P "$jobs" -I{} sh -c '
  mkdir -p corpus/{} seeds/{}
  cargo +nightly fuzz run --target-dir '"$target_dir"' {} corpus/{} seeds/{} -- \
    -max_total_time='"$seconds"' -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
    >../target/fuzz/{}.log 2>&1 || { echo "fuzz: {} failed, see target/fuzz/{}.log"; exit 255; }
  echo "fuzz: {} ran '"$seconds"' s: $(grep -o "stat::number_of_executed_units: *[0-9]*" ../target/fuzz/{}.log | grep -o "[0-9]*$") runs"
'
for target in $targets; do
  cargo +nightly fuzz cmin --target-dir "$target_dir" "$target" "corpus/$target" >/dev/null 2>&1
done
echo "fuzz: corpora minimised in fuzz/corpus"
