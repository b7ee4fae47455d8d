#!/usr/bin/env bash
# Regenerates the sample journals and their expected outputs (root: it makes network namespaces).
# Usage: sudo samples/make-samples.sh [--force]     (--force replaces existing samples)
set -euo pipefail
cd "$(dirname "$0")/.."

child=''
cleanup() {
  # make-samples.ts deletes its namespaces itself; this catches a node that died too hard to.
  if [[ -n "$child" ]]; then
    for ns in $(ip netns list | awk '{print $1}' | grep "^ctnet-${child}-" || true); do
      # A recorder or server left inside would run on in a namespace nobody can reach.
      ip netns pids "$ns" | xargs -r kill -9 || true
      ip netns del "$ns" || true
    done
  fi
}
trap cleanup EXIT

npm run --silent build
# tap's TypeScript loader (ts-node, transpile only) runs the scenario shared with the e2e test.
export TS_NODE_TRANSPILE_ONLY=1 TS_NODE_PROJECT=tsconfig.test.json
node --import @tapjs/typescript/import samples/make-samples.ts "$@" &
child=$!
wait "$child"
