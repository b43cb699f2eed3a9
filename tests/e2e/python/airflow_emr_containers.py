"""Apache Airflow's amazon provider, unchanged, against a real sparkvc-server.

Run with the python of a venv installed from deploy/local/airflow-requirements.txt:

    python airflow_emr_containers.py complete|fail|cancel

What it proves: a user's Airflow DAG that drives EMR on EKS through
``EmrContainerHook`` / ``EmrContainerOperator`` works against sparkvc by only
pointing its AWS connection at sparkvc's endpoint. Every call goes through
Airflow's own code (its connection handling, its boto3 client with SigV4, its
state sets and polling loop); this script only wires it up and reports.

- ``complete``: ``EmrContainerHook.submit_job`` of a SparkPi job, then
  ``poll_query_status`` until a terminal state; exit 0 only on COMPLETED.
- ``fail``: submit a job whose entry point (SPARKVC_FAILING_ENTRY_POINT) must
  fail, poll to a terminal state, then ``get_job_failure_reason``; exit 0 only
  on FAILED with a failure reason.
- ``cancel``: submit, then what Airflow runs when a running task is killed:
  ``EmrContainerOperator.on_kill()`` (cancel_job_run, then the operator's own
  poll until terminal); exit 0 only on CANCEL_PENDING or CANCELLED.

Each mode prints one JSON line on stdout (Airflow's logs are sent to stderr):
``{"jobId": ..., "state": ...}`` (plus ``"failureReason"`` in ``fail``), and
exits 0 or 1 as above. A call that raises (sparkvc's error answer, no
connection, a job Airflow reports not found, on_kill timing out) prints
``{"error": {"code", "message", "httpStatus", "operation"}}`` and exits 2.
Note that Airflow itself swallows other errors of describe_job_run: its
check_query_status logs them and returns None, and get_job_failure_reason
returns None, so a ``"state": null`` or ``"failureReason": null`` means
"look at stderr", and counts as failure here.

Environment:
    SPARKVC_ENDPOINT              e.g. http://127.0.0.1:PORT
    SPARKVC_REGION                e.g. us-west-2
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
    SPARKVC_VIRTUAL_CLUSTER_ID, SPARKVC_EXECUTION_ROLE_ARN, SPARKVC_RELEASE_LABEL
    SPARKVC_FAILING_ENTRY_POINT   (fail mode) the entry point of the run that must fail
    SPARKVC_FAILING_SUBMIT_PARAMETERS (fail mode, optional) its sparkSubmitParameters
    SPARKVC_CONFIGURATION_OVERRIDES   optional JSON: configurationOverrides of every run
    SPARKVC_POLL_INTERVAL         seconds between describe_job_run calls (default 2)
    SPARKVC_MAX_POLLING_ATTEMPTS  poll_query_status's max_polling_attempts (default 150);
                                  when reached, Airflow returns the last, non-terminal state
    SPARKVC_CANCEL_WHEN_RUNNING   1: in cancel mode, wait until the run has left
                                  PENDING/SUBMITTED before killing (needs Kubernetes)
    SPARKVC_KILL_TIMEOUT          seconds on_kill may take (default 120): Airflow's
                                  on_kill polls with no attempt limit, so a cancel that
                                  never reaches a terminal state would hang without it

The Airflow connection is given the way a deployment gives one through the
environment, as ``AIRFLOW_CONN_SPARKVC`` (JSON, read by Airflow's environment
secrets backend): login/password are the access key, ``extra.endpoint_url`` is
sparkvc, ``extra.region_name`` the region, and ``extra.config_kwargs`` turns off
botocore's retries (one attempt per call, short timeouts) so that an error from
sparkvc surfaces at once instead of after retries. AIRFLOW_HOME is a fresh temp
directory; no Airflow metadata database is created or needed.
"""

import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
import time

MODE = sys.argv[1] if len(sys.argv) == 2 else None
if MODE not in ("complete", "fail", "cancel"):
    sys.exit(f"usage: {sys.argv[0]} complete|fail|cancel")

# Airflow's logs are written to stdout; the one result line keeps stdout to itself.
RESULT = sys.stdout
sys.stdout = sys.stderr

# Airflow reads its configuration and connections at import time: set them first.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="sparkvc-airflow-")
atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
CONN_ID = "sparkvc"
os.environ["AIRFLOW_CONN_SPARKVC"] = json.dumps(
    {
        "conn_type": "aws",
        "login": os.environ["AWS_ACCESS_KEY_ID"],
        "password": os.environ["AWS_SECRET_ACCESS_KEY"],
        "extra": {
            "endpoint_url": os.environ["SPARKVC_ENDPOINT"],
            "region_name": os.environ["SPARKVC_REGION"],
            "config_kwargs": {
                # botocore's total_max_attempts counts the first try: 1 = no retry.
                "retries": {"mode": "standard", "total_max_attempts": 1},
                "connect_timeout": 5,
                "read_timeout": 30,
            },
        },
    }
)

from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from airflow.exceptions import AirflowException  # noqa: E402

from airflow.providers.amazon.aws.hooks.emr import EmrContainerHook  # noqa: E402
from airflow.providers.amazon.aws.operators.emr import EmrContainerOperator  # noqa: E402

VIRTUAL_CLUSTER_ID = os.environ["SPARKVC_VIRTUAL_CLUSTER_ID"]
EXECUTION_ROLE_ARN = os.environ["SPARKVC_EXECUTION_ROLE_ARN"]
RELEASE_LABEL = os.environ["SPARKVC_RELEASE_LABEL"]
POLL_INTERVAL = int(os.environ.get("SPARKVC_POLL_INTERVAL", "2"))
MAX_POLLING_ATTEMPTS = int(os.environ.get("SPARKVC_MAX_POLLING_ATTEMPTS", "150"))
KILL_TIMEOUT = int(os.environ.get("SPARKVC_KILL_TIMEOUT", "120"))

PI = "local:///opt/spark/examples/src/main/python/pi.py"


OVERRIDES = json.loads(os.environ.get("SPARKVC_CONFIGURATION_OVERRIDES") or "null")


def job_driver(entry_point, submit_parameters):
    return {
        "sparkSubmitJobDriver": {
            "entryPoint": entry_point,
            "entryPointArguments": ["10"],
            "sparkSubmitParameters": submit_parameters,
        }
    }


def job_parameters(entry_point, submit_parameters="--conf spark.executor.instances=1"):
    """What both the hook's submit_job and the operator take."""
    parameters = {
        "name": f"airflow-{MODE}",
        "execution_role_arn": EXECUTION_ROLE_ARN,
        "release_label": RELEASE_LABEL,
        "job_driver": job_driver(entry_point, submit_parameters),
    }
    if OVERRIDES is not None:
        parameters["configuration_overrides"] = OVERRIDES
    return parameters


def poll(hook, job_id):
    return hook.poll_query_status(
        job_id, poll_interval=POLL_INTERVAL, max_polling_attempts=MAX_POLLING_ATTEMPTS
    )


def report(result, ok):
    print(json.dumps(result), file=RESULT, flush=True)
    sys.exit(0 if ok else 1)


def on_alarm(signum, frame):
    raise TimeoutError(f"EmrContainerOperator.on_kill did not return in {KILL_TIMEOUT}s")


def main():
    hook = EmrContainerHook(aws_conn_id=CONN_ID, virtual_cluster_id=VIRTUAL_CLUSTER_ID)

    if MODE == "complete":
        job_id = hook.submit_job(**job_parameters(PI))
        state = poll(hook, job_id)
        report({"jobId": job_id, "state": state}, state == "COMPLETED")

    if MODE == "fail":
        failing = [os.environ["SPARKVC_FAILING_ENTRY_POINT"]]
        if os.environ.get("SPARKVC_FAILING_SUBMIT_PARAMETERS"):
            failing.append(os.environ["SPARKVC_FAILING_SUBMIT_PARAMETERS"])
        job_id = hook.submit_job(**job_parameters(*failing))
        state = poll(hook, job_id)
        # Airflow returns "<failureReason> - <stateDetails>", or None (and logs
        # an error) when describe_job_run lacks either field.
        reason = hook.get_job_failure_reason(job_id)
        report(
            {"jobId": job_id, "state": state, "failureReason": reason},
            state == "FAILED" and bool(reason),
        )

    if MODE == "cancel":
        job_id = hook.submit_job(**job_parameters(PI))
        if os.environ.get("SPARKVC_CANCEL_WHEN_RUNNING") == "1":
            # Kill the task while the Spark driver runs, not while it is queued.
            for _ in range(MAX_POLLING_ATTEMPTS):
                if hook.check_query_status(job_id) not in ("PENDING", "SUBMITTED"):
                    break
                time.sleep(POLL_INTERVAL)
        operator = EmrContainerOperator(
            task_id="sparkvc_cancel",
            aws_conn_id=CONN_ID,
            virtual_cluster_id=VIRTUAL_CLUSTER_ID,
            **job_parameters(PI),
        )
        operator.job_id = job_id  # as execute() leaves it while the job runs
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(KILL_TIMEOUT)
        operator.on_kill()
        signal.alarm(0)
        state = poll(hook, job_id)
        report({"jobId": job_id, "state": state}, state in ("CANCEL_PENDING", "CANCELLED"))


def error_line(e):
    """What a failed call says, for the caller to check."""
    if isinstance(e, ClientError):
        return {
            "code": e.response.get("Error", {}).get("Code"),
            "message": e.response.get("Error", {}).get("Message"),
            "httpStatus": e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            "operation": e.operation_name,
        }
    # Not an answer from sparkvc: no connection, botocore's own parameter
    # validation, or Airflow's (e.g. "Job ID ... not found" from check_query_status).
    return {"code": type(e).__name__, "message": str(e), "httpStatus": None, "operation": None}


if __name__ == "__main__":
    try:
        main()
    except (ClientError, BotoCoreError, AirflowException, TimeoutError) as e:
        print(json.dumps({"error": error_line(e)}), file=RESULT, flush=True)
        sys.exit(2)
