#!/bin/sh
# Run the ingest on the `ray up` cluster of cluster.yaml: the shipped CLI, on the head node, joined
# to the cluster (--ray-address auto). Re-running the same command resumes (upserts, same ids).
set -eu
QDRANT_URL=${QDRANT_URL:-http://qdrant.internal:6333}
ray exec "$(dirname "$0")/cluster.yaml" "instructor ingest /home/ubuntu/corpus/ --engine ray --ray-address auto --store qdrant+$QDRANT_URL --collection docs --model hkunlp/instructor-large --id-field _id --concurrency 2 --num-gpus 1 --task-cpus 1 --stall-warn 120 --stall-limit 900"
