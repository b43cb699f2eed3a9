#!/bin/bash
# sparkvc's entrypoint for the local Spark image (deploy/local/node/images).
#
# Spark on Kubernetes starts its pods with only container *args* (the image's
# entrypoint stays), and says what to run in the first one:
#
#   driver ARGS...    spark-submit in client mode inside the driver pod; ARGS
#                     are what DriverCommandFeatureStep passes (--properties-file
#                     /opt/spark/conf/spark.properties --class C RESOURCE APPARGS...).
#                     The pod IP comes in SPARK_DRIVER_BIND_ADDRESS.
#   executor          a KubernetesExecutorBackend JVM; everything comes from
#                     the environment that BasicExecutorFeatureStep sets:
#                     SPARK_DRIVER_URL, SPARK_EXECUTOR_ID, SPARK_EXECUTOR_CORES,
#                     SPARK_EXECUTOR_MEMORY, SPARK_APPLICATION_ID,
#                     SPARK_EXECUTOR_POD_IP, SPARK_EXECUTOR_POD_NAME,
#                     SPARK_RESOURCE_PROFILE_ID, SPARK_JAVA_OPT_<n> (JVM options,
#                     in order of n), SPARK_CLASSPATH, SPARK_EXTRA_CLASSPATH,
#                     SPARK_CONF_DIR, HADOOP_CONF_DIR.
#   anything else     run as given (e.g. /opt/spark/bin/spark-submit ... for a
#                     job-runner that sets only args).
#
# Either way the command runs under tini as PID 1, so that signals reach it
# and orphaned children (Python workers) are reaped. PYSPARK_PYTHON and
# PYSPARK_DRIVER_PYTHON, when the pod sets them, are simply inherited.
set -eo pipefail

export SPARK_HOME="${SPARK_HOME:-/opt/spark}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

die() { echo "sparkvc-entrypoint: $*" >&2; exit 2; }

# The JVM (Hadoop's login through JAAS) needs a name for the user it runs
# as. The image has one for uid 185; a pod that runs as another uid gets an
# entry if /etc/passwd is writable, else a clear warning.
if ! getent passwd "$(id -u)" >/dev/null; then
  if [[ -w /etc/passwd ]]; then
    echo "spark-$(id -u):x:$(id -u):$(id -g):sparkvc spark user:${HOME:-/tmp}:/bin/false" >>/etc/passwd
  else
    echo "sparkvc-entrypoint: uid $(id -u) has no /etc/passwd entry; the JVM may fail to log in" >&2
  fi
fi

# The executor's classpath: configuration directories first (so that their
# log4j2/hadoop files win), then SPARK_CLASSPATH, Spark's jars, the extra
# classpath from spark.executor.extraClassPath and a Hadoop distribution's.
executor_classpath() {
  local cp=""
  [[ -n ${SPARK_CONF_DIR:-} ]] && cp+="$SPARK_CONF_DIR:"
  [[ -n ${HADOOP_CONF_DIR:-} ]] && cp+="$HADOOP_CONF_DIR:"
  [[ -n ${SPARK_CLASSPATH:-} ]] && cp+="$SPARK_CLASSPATH:"
  cp+="$SPARK_HOME/jars/*"
  [[ -n ${SPARK_EXTRA_CLASSPATH:-} ]] && cp+=":$SPARK_EXTRA_CLASSPATH"
  [[ -n ${SPARK_DIST_CLASSPATH:-} ]] && cp+=":$SPARK_DIST_CLASSPATH"
  echo "$cp"
}

case "${1:-}" in
  driver)
    shift
    : "${SPARK_DRIVER_BIND_ADDRESS:?the driver pod must set SPARK_DRIVER_BIND_ADDRESS (its pod IP)}"
    exec /usr/bin/tini -- "$SPARK_HOME/bin/spark-submit" \
      --deploy-mode client \
      --conf "spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=$SPARK_DRIVER_BIND_ADDRESS" \
      "$@"
    ;;
  executor)
    shift
    for v in SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES SPARK_EXECUTOR_MEMORY \
      SPARK_APPLICATION_ID SPARK_EXECUTOR_POD_IP; do
      [[ -n ${!v:-} ]] || die "executor: $v is not set (is this pod from Spark's executor builder?)"
    done
    # SPARK_JAVA_OPT_0, _1, ... in numeric order (not the shell's sort order).
    java_opts=()
    while read -r name; do
      java_opts+=("${!name}")
    done < <(compgen -v SPARK_JAVA_OPT_ | sort -t_ -k4,4n)
    host="$SPARK_EXECUTOR_POD_IP"
    [[ $host == *:* && $host != \[* ]] && host="[$host]"  # IPv6 pod IP
    backend_args=(
      --driver-url "$SPARK_DRIVER_URL"
      --executor-id "$SPARK_EXECUTOR_ID"
      --cores "$SPARK_EXECUTOR_CORES"
      --app-id "$SPARK_APPLICATION_ID"
      --hostname "$host"
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}"
    )
    [[ -n ${SPARK_EXECUTOR_POD_NAME:-} ]] && backend_args+=(--podName "$SPARK_EXECUTOR_POD_NAME")
    # The heap is the executor memory; the pod's limit adds Spark's overhead.
    exec /usr/bin/tini -- "$JAVA" "${java_opts[@]}" -Xmx"$SPARK_EXECUTOR_MEMORY" \
      -cp "$(executor_classpath)" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend "${backend_args[@]}" "$@"
    ;;
  "")
    die "usage: entrypoint.sh driver SPARK-SUBMIT-ARGS... | executor | COMMAND ARGS..."
    ;;
  *)
    exec /usr/bin/tini -- "$@"
    ;;
esac
