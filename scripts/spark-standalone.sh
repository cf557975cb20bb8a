#!/usr/bin/env bash
# A Spark standalone cluster on this machine, from the PySpark distribution's own launcher (bin/spark-class):
# a master and WORKERS workers, each with CORES cores and MEMORY of memory.
#
#   scripts/spark-standalone.sh start DIR [WORKERS=2] [CORES=1] [MEMORY=2g]   # prints the master URL
#   scripts/spark-standalone.sh stop DIR
#
# DIR holds the logs, the process ids and the workers' scratch folders. The master listens on
# 127.0.0.1:${SPARK_MASTER_PORT:-7077} (web UI ${SPARK_MASTER_WEBUI_PORT:-8080}); PYTHON (default python3) is
# the interpreter with truckcarbon and pyspark installed. Then:
#
#   truckcarbon run --engine spark --spark-master spark://127.0.0.1:7077 --pings P --vehicles V --out RUN
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
dir=$2
PYTHON=${PYTHON:-python3}
port=${SPARK_MASTER_PORT:-7077}
webui=${SPARK_MASTER_WEBUI_PORT:-8080}

stop() {
  for pidfile in "$dir"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

alive_workers() {  # the master's count of registered workers (its web UI's JSON), 0 while it is not up
  "$PYTHON" - "$webui" <<'EOF' 2>/dev/null || echo 0
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/json/", timeout=2) as r:
    print(json.load(r).get("aliveworkers", 0))
EOF
}

case "$cmd" in
  start)
    workers=${3:-2}
    cores=${4:-1}
    memory=${5:-2g}
    mkdir -p "$dir"
    SPARK_HOME=${SPARK_HOME:-$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}
    export SPARK_HOME
    class="$SPARK_HOME/bin/spark-class"
    [ -x "$class" ] || { echo "no $class: install pyspark (pip install 'truckcarbon[spark]')" >&2; exit 2; }
    nohup "$class" org.apache.spark.deploy.master.Master --host 127.0.0.1 --port "$port" --webui-port "$webui" \
      > "$dir/master.log" 2>&1 &
    echo $! > "$dir/master.pid"
    for i in $(seq "$workers"); do
      mkdir -p "$dir/worker-$i"
      nohup "$class" org.apache.spark.deploy.worker.Worker --host 127.0.0.1 --cores "$cores" --memory "$memory" \
        --work-dir "$dir/worker-$i" --webui-port 0 "spark://127.0.0.1:$port" > "$dir/worker-$i.log" 2>&1 &
      echo $! > "$dir/worker-$i.pid"
    done
    for _ in $(seq 120); do  # at most a minute for the master and its workers to come up
      if [ "$(alive_workers)" -ge "$workers" ]; then
        echo "spark://127.0.0.1:$port"
        exit 0
      fi
      sleep 0.5
    done
    echo "the cluster did not come up within a minute: see $dir/*.log" >&2
    stop
    exit 1
    ;;
  stop)
    stop
    ;;
  *)
    usage
    ;;
esac
