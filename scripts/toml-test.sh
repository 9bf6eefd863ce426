#!/bin/sh
# Runs the TOML reader against the toml-test corpus (not part of the
# repository): clones it under /tmp once, then runs TOMLCorpusTests, which
# print the pass rates for valid and invalid documents.
#   scripts/toml-test.sh [CORPUS_DIR]   (default /tmp/toml-test)
set -eu
dir=${1:-/tmp/toml-test}
if [ ! -d "$dir/tests" ]; then
    git clone --depth 1 https://github.com/BurntSushi/toml-test "$dir"
fi
TOML_TEST_DIR=$dir exec swift test --filter TOMLCorpusTests
