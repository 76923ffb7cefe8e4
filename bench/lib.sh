# Sourced by the bench scripts that start a cluster of their own, after
# they set OUT (the report directory) and DATA (the cluster's data).
#
# stop_cluster (their EXIT trap) stops every process in PIDS, keeps each
# node's log in OUT as node-N.log, and deletes DATA unless TIDAL_KEEP_DATA=1:
# a run with 1 GiB of data leaves 10-15 GiB behind.
PIDS=()
stop_cluster() {
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for log in "$DATA"/node-*/node.log; do
    if [ -f "$log" ]; then cp "$log" "$OUT/$(basename "$(dirname "$log")").log" || true; fi
  done
  if [ "${TIDAL_KEEP_DATA:-0}" != 1 ]; then rm -rf "$DATA"; fi
}
