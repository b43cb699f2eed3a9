"""boto3, unchanged, against a real sparkvc-server over the REST protocol.

Run by tests/e2e/tests/rest_clients.rs with the pinned boto3 of
deploy/local/requirements.txt. The environment gives the endpoint and two
tenants' keys (A and B, held to the tenant policy of that test). Every
operation of the emr-containers model is called through boto3's own client
(SigV4, REST-JSON, its parsers and modeled exceptions); every paginator is
driven to its end; bad input is sent as requests botocore signs, and must
leave nothing stored. Prints one JSON line with what the Rust side checks
next (the ids made here), or fails with an assertion naming the check.
"""

import datetime
import json
import os
import sys
import urllib.parse

import boto3
import botocore.exceptions
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.config import Config

ENDPOINT = os.environ["SPARKVC_ENDPOINT"]
REGION = os.environ["SPARKVC_REGION"]
ACCOUNT = "123456789012"
KEYS = {
    "a": (os.environ["TENANT_A_KEY"], os.environ["TENANT_A_SECRET"]),
    "b": (os.environ["TENANT_B_KEY"], os.environ["TENANT_B_SECRET"]),
    # An operator allowed everything: under the tenant policy a resource that
    # does not exist has no tags, so a tenant is denied before "not found".
    "ops": (os.environ["OPERATOR_KEY"], os.environ["OPERATOR_SECRET"]),
}
checks = 0


def check(condition, what):
    global checks
    assert condition, what
    checks += 1


def client(team):
    key, secret = KEYS[team]
    return boto3.client(
        "emr-containers",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        # Retries would hide a wrong status; every answer must be the first.
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def error_of(call, *args, **kwargs):
    """The botocore ClientError a call raises (it must raise one)."""
    try:
        call(*args, **kwargs)
    except botocore.exceptions.ClientError as err:
        return err
    raise AssertionError(f"{call.__name__} succeeded, but an error was expected")


def expect_error(code, call, *args, **kwargs):
    err = error_of(call, *args, **kwargs)
    got = err.response["Error"]["Code"]
    check(got == code, f"{call.__name__}: error {got} ({err.response['Error'].get('Message')}), expected {code}")
    message = err.response["Error"]["Message"]
    check(message, f"{call.__name__}: {code} without a message")
    check(err.response["ResponseMetadata"].get("RequestId"), f"{call.__name__}: {code} without x-amzn-RequestId")
    return err


a = client("a")
b = client("b")
ops = client("ops")
started = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
role_a = f"arn:aws:iam::{ACCOUNT}:role/a-spark"
namespace = os.environ["SPARKVC_NAMESPACE"]

# --- Virtual clusters ---------------------------------------------------
vc = a.create_virtual_cluster(
    name="rest-a",
    containerProvider={"id": "local", "type": "EKS", "info": {"eksInfo": {"namespace": namespace}}},
    tags={"team": "a"},
    clientToken="vc-token-1",
)
vc_id, vc_arn = vc["id"], vc["arn"]
check(vc_arn == f"arn:aws:emr-containers:{REGION}:{ACCOUNT}:/virtualclusters/{vc_id}", f"virtual cluster ARN {vc_arn}")
again = a.create_virtual_cluster(
    name="rest-a",
    containerProvider={"id": "local", "type": "EKS", "info": {"eksInfo": {"namespace": namespace}}},
    tags={"team": "a"},
    clientToken="vc-token-1",
)
check(again["id"] == vc_id, "CreateVirtualCluster with the same clientToken made a second cluster")

described = a.describe_virtual_cluster(id=vc_id)["virtualCluster"]
check(described["state"] == "RUNNING", f"virtual cluster state {described['state']}")
check(isinstance(described["createdAt"], datetime.datetime), "createdAt is not parsed as a datetime")
check(described["createdAt"] >= started, f"createdAt {described['createdAt']} is before the test started")
check(described["tags"] == {"team": "a"}, f"tags {described['tags']}")
check(described["containerProvider"]["info"]["eksInfo"]["namespace"] == namespace, "namespace lost")

listed = a.list_virtual_clusters(
    states=["RUNNING", "ARRESTED"],
    containerProviderId="local",
    containerProviderType="EKS",
    createdAfter=started,
    createdBefore=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5),
    maxResults=10,
)["virtualClusters"]
check([v["id"] for v in listed] == [vc_id], f"ListVirtualClusters with filters gave {[v['id'] for v in listed]}")
check(
    a.list_virtual_clusters(createdBefore=started)["virtualClusters"] == [],
    "createdBefore did not filter",
)
check(
    a.list_virtual_clusters(containerProviderId="another-cluster")["virtualClusters"] == [],
    "containerProviderId did not filter",
)
updated = a.update_virtual_cluster(
    id=vc_id, clientToken="update-1", schedulerConfiguration={"maxConcurrentJobRuns": 10, "maxInQueueJobRuns": 100}
)["virtualCluster"]
check(updated["id"] == vc_id, f"UpdateVirtualCluster answered {updated}")
check(
    a.describe_virtual_cluster(id=vc_id)["virtualCluster"]["schedulerConfiguration"]["maxConcurrentJobRuns"] == 10,
    "UpdateVirtualCluster's scheduler configuration was not kept",
)

# Tenant B sees none of A's cluster, and cannot act on it.
expect_error("AccessDeniedException", b.describe_virtual_cluster, id=vc_id)
check(
    vc_id not in [v["id"] for v in b.list_virtual_clusters()["virtualClusters"]],
    "tenant B lists tenant A's virtual cluster",
)

# --- Job runs: idempotency, filters, paginators, cancel -------------------
driver = {"sparkSubmitJobDriver": {"entryPoint": "local:///opt/spark/examples/src/main/python/pi.py",
                                    "entryPointArguments": ["10"],
                                    "sparkSubmitParameters": "--conf spark.executor.instances=1"}}
first_run = dict(
    name="pi-0",
    virtualClusterId=vc_id,
    clientToken="run-token-0",
    executionRoleArn=role_a,
    releaseLabel="emr-7.2.0-latest",
    jobDriver=driver,
    configurationOverrides={
        "applicationConfiguration": [
            {"classification": "spark-defaults", "properties": {"spark.driver.memory": "1g"}}
        ],
        "monitoringConfiguration": {"persistentAppUI": "ENABLED"},
    },
    tags={"team": "a", "step": "0"},
)
run = a.start_job_run(**first_run)
run_id = run["id"]
check(run["virtualClusterId"] == vc_id, "StartJobRun answered another virtual cluster")
check(run["arn"] == f"{vc_arn}/jobruns/{run_id}", f"job run ARN {run['arn']}")
check(a.start_job_run(**first_run)["id"] == run_id, "StartJobRun with the same clientToken started a second run")
err = expect_error("ValidationException", a.start_job_run, **{**first_run, "name": "another"})
check("client token" in err.response["Error"]["Message"], f"a reused token: {err.response['Error']}")
for i in range(1, 5):
    a.start_job_run(
        name=f"pi-{i}",
        virtualClusterId=vc_id,
        clientToken=f"run-token-{i}",
        executionRoleArn=role_a,
        releaseLabel="emr-7.2.0-latest",
        jobDriver=driver,
        tags={"team": "a"},
    )

job = a.describe_job_run(id=run_id, virtualClusterId=vc_id)["jobRun"]
check(job["name"] == "pi-0" and job["releaseLabel"] == "emr-7.2.0-latest", f"described run {job}")
check(job["executionRoleArn"] == role_a, "executionRoleArn lost")
check(job["createdBy"] == f"arn:aws:iam::{ACCOUNT}:user/alice", f"createdBy {job['createdBy']}")
check(isinstance(job["createdAt"], datetime.datetime), "job run createdAt is not a datetime")
check(job["jobDriver"] == driver, f"jobDriver came back as {job['jobDriver']}")
check(job["tags"] == {"team": "a", "step": "0"}, f"run tags {job.get('tags')}")
check(
    job["configurationOverrides"]["applicationConfiguration"][0]["properties"] == {"spark.driver.memory": "1g"},
    "applicationConfiguration lost",
)

pages = list(a.get_paginator("list_job_runs").paginate(virtualClusterId=vc_id, PaginationConfig={"PageSize": 2}))
check(len(pages) == 3, f"5 runs in pages of 2 came in {len(pages)} pages")
names = sorted(r["name"] for p in pages for r in p["jobRuns"])
check(names == [f"pi-{i}" for i in range(5)], f"paginated runs {names}")
check("nextToken" not in pages[-1], "the last page has a nextToken")
first = a.list_job_runs(virtualClusterId=vc_id, maxResults=2)
check(len(first["jobRuns"]) == 2 and first["nextToken"], "maxResults=2 did not give a page and a token")
rest = a.list_job_runs(virtualClusterId=vc_id, maxResults=10, nextToken=first["nextToken"])
check(len(rest["jobRuns"]) == 3, f"the page after the token has {len(rest['jobRuns'])} runs")
check(
    [r["name"] for r in a.list_job_runs(virtualClusterId=vc_id, name="pi-3")["jobRuns"]] == ["pi-3"],
    "the name filter",
)
pending = a.list_job_runs(virtualClusterId=vc_id, states=["PENDING", "SUBMITTED"])["jobRuns"]
check(len(pending) == 5, f"{len(pending)} runs are PENDING or SUBMITTED")
check(a.list_job_runs(virtualClusterId=vc_id, states=["COMPLETED"])["jobRuns"] == [], "a states filter")
check(
    a.list_job_runs(virtualClusterId=vc_id, createdBefore=started)["jobRuns"] == [],
    "createdBefore on job runs",
)
check(len(a.list_job_runs(virtualClusterId=vc_id, createdAfter=started)["jobRuns"]) == 5, "createdAfter on job runs")
expect_error("AccessDeniedException", b.describe_job_run, id=run_id, virtualClusterId=vc_id)
expect_error(
    "AccessDeniedException", b.start_job_run, name="x", virtualClusterId=vc_id, clientToken="b-1",
    executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/b-spark", releaseLabel="emr-7.2.0-latest", jobDriver=driver,
)

cancelled = a.cancel_job_run(id=run_id, virtualClusterId=vc_id)
check(cancelled == {**cancelled, "id": run_id, "virtualClusterId": vc_id}, f"CancelJobRun answered {cancelled}")
state = a.describe_job_run(id=run_id, virtualClusterId=vc_id)["jobRun"]["state"]
check(state in ("CANCEL_PENDING", "CANCELLED"), f"a cancelled run is {state}")

# A payload replayed from EMR on EKS: spark-env's nested export, log4j2,
# Hive and Hadoop settings, metrics.
replayed = {
    "applicationConfiguration": [
        {"classification": "spark-defaults", "properties": {"spark.executor.instances": "2"}},
        {"classification": "spark-env", "configurations": [
            {"classification": "export", "properties": {"PYSPARK_PYTHON": "/usr/bin/python3"}}]},
        {"classification": "spark-log4j2", "properties": {"rootLogger.level": "warn"}},
        {"classification": "spark-hive-site", "properties": {"hive.metastore.uris": "thrift://metastore:9083"}},
        {"classification": "core-site", "properties": {"fs.s3a.connection.maximum": "200"}},
        {"classification": "spark-metrics", "properties": {"*.sink.console.class": "org.apache.spark.metrics.sink.ConsoleSink"}},
    ]
}
nested_run = a.start_job_run(
    name="replayed", virtualClusterId=vc_id, clientToken="replayed", executionRoleArn=role_a,
    releaseLabel="emr-7.2.0-latest", jobDriver=driver, configurationOverrides=replayed, tags={"team": "a"},
)
got = a.describe_job_run(id=nested_run["id"], virtualClusterId=vc_id)["jobRun"]["configurationOverrides"]
check(got == replayed, f"nested applicationConfiguration came back as {got}")
secret = "s3cr3t-" + "p" * 1100
err = expect_error(
    "ValidationException", a.start_job_run, name="secret", virtualClusterId=vc_id, clientToken="secret",
    executionRoleArn=role_a, releaseLabel="emr-7.2.0-latest", jobDriver=driver, tags={"team": "a"},
    configurationOverrides={"applicationConfiguration": [
        {"classification": "spark-defaults", "properties": {"spark.hadoop.fs.s3a.secret.key": secret}}]},
)
message = err.response["Error"]["Message"]
check("s3cr3t" not in message and "spark.hadoop.fs.s3a.secret.key" in message, f"a property value was echoed: {message}")
a.cancel_job_run(id=nested_run["id"], virtualClusterId=vc_id)

# --- Job templates ------------------------------------------------------
template = a.create_job_template(
    name="pi-template",
    clientToken="template-1",
    jobTemplateData={
        "executionRoleArn": role_a,
        "releaseLabel": "${Release}",
        "jobDriver": driver,
        "parameterConfiguration": {"Release": {"type": "STRING", "defaultValue": "emr-7.2.0-latest"}},
    },
    tags={"team": "a"},
)
template_id = template["id"]
check(template["arn"].endswith(f":/jobtemplates/{template_id}"), f"template ARN {template['arn']}")
described = a.describe_job_template(id=template_id)["jobTemplate"]
check(described["jobTemplateData"]["releaseLabel"] == "${Release}", "template data lost")
check(isinstance(described["createdAt"], datetime.datetime), "template createdAt is not a datetime")
from_template = a.start_job_run(
    virtualClusterId=vc_id, clientToken="from-template", jobTemplateId=template_id, name="templated",
    tags={"team": "a"},
)
templated = a.describe_job_run(id=from_template["id"], virtualClusterId=vc_id)["jobRun"]
check(templated["releaseLabel"] == "emr-7.2.0-latest", f"the template's default release gave {templated['releaseLabel']}")
templates = [t for p in a.get_paginator("list_job_templates").paginate(PaginationConfig={"PageSize": 1}) for t in p["templates"]]
check([t["id"] for t in templates] == [template_id], f"ListJobTemplates paginated to {templates}")

# --- Security configurations -------------------------------------------
security = a.create_security_configuration(
    name="tls-off",
    clientToken="security-1",
    securityConfigurationData={
        "authorizationConfiguration": {"lakeFormationConfiguration": {"authorizedSessionTagValue": "EMR on EKS Engine"}}
    },
    tags={"team": "a"},
)
security_id = security["id"]
got = a.describe_security_configuration(id=security_id)["securityConfiguration"]
check(got["name"] == "tls-off" and isinstance(got["createdAt"], datetime.datetime), f"security configuration {got}")
listed = [
    s for p in a.get_paginator("list_security_configurations").paginate(PaginationConfig={"PageSize": 1})
    for s in p["securityConfigurations"]
]
check(security_id in [s["id"] for s in listed], "ListSecurityConfigurations paginated without the new one")
vcs = [v for p in a.get_paginator("list_virtual_clusters").paginate(PaginationConfig={"PageSize": 1}) for v in p["virtualClusters"]]
check([v["id"] for v in vcs] == [vc_id], f"ListVirtualClusters paginated to {[v['id'] for v in vcs]}")

# --- Tags, with ARNs in the path ---------------------------------------
run_arn = run["arn"]
a.tag_resource(resourceArn=run_arn, tags={"team": "a", "cost-center": "42", "with space": "a/b+c"})
tags = a.list_tags_for_resource(resourceArn=run_arn)["tags"]
check(tags == {"team": "a", "step": "0", "cost-center": "42", "with space": "a/b+c"}, f"tags after TagResource {tags}")
a.untag_resource(resourceArn=run_arn, tagKeys=["cost-center", "with space"])
tags = a.list_tags_for_resource(resourceArn=run_arn)["tags"]
check(tags == {"team": "a", "step": "0"}, f"tags after UntagResource {tags}")
check(a.list_tags_for_resource(resourceArn=vc_arn)["tags"] == {"team": "a"}, "virtual cluster tags")
expect_error("AccessDeniedException", b.list_tags_for_resource, resourceArn=vc_arn)
expect_error("ValidationException", a.tag_resource, resourceArn="arn:aws:sqs:us-west-2:123456789012:a-queue-name-long-enough-for-the-model", tags={"team": "a"})
expect_error(
    "ResourceNotFoundException",
    ops.list_tags_for_resource,
    resourceArn=f"arn:aws:emr-containers:{REGION}:{ACCOUNT}:/virtualclusters/{'0' * 25}",
)

# --- Errors through botocore's modeled exceptions ----------------------
expect_error("AccessDeniedException", a.describe_job_run, id="0" * 19, virtualClusterId=vc_id)
try:
    ops.describe_job_run(id="0" * 19, virtualClusterId=vc_id)
    raise AssertionError("a run that does not exist was described")
except ops.exceptions.ResourceNotFoundException as err:
    check("doesn't exist" in err.response["Error"]["Message"], f"not-found message {err.response['Error']}")
    check(err.response["ResponseMetadata"]["HTTPStatusCode"] == 400, "ResourceNotFoundException is a 400")
try:
    a.start_job_run(
        name="bad", virtualClusterId=vc_id, clientToken="bad-release", executionRoleArn=role_a,
        releaseLabel="emr-0.0.0-nope", jobDriver=driver,
    )
    raise AssertionError("an unknown release label was accepted")
except a.exceptions.ResourceNotFoundException as err:
    check("emr-0.0.0-nope" in err.response["Error"]["Message"], f"the message names the release: {err.response['Error']}")
expect_error(
    "ValidationException", a.start_job_run, name="x" * 300, virtualClusterId=vc_id, clientToken="long-name",
    executionRoleArn=role_a, releaseLabel="emr-7.2.0-latest", jobDriver=driver,
)

# --- Managed endpoints: not implemented, and said so -------------------
for call, kwargs in [
    (a.create_managed_endpoint, dict(name="e", virtualClusterId=vc_id, type="JUPYTER_ENTERPRISE_GATEWAY",
                                     releaseLabel="emr-7.2.0-latest", executionRoleArn=role_a, clientToken="e")),
    (a.list_managed_endpoints, dict(virtualClusterId=vc_id)),
    (a.describe_managed_endpoint, dict(id="abc", virtualClusterId=vc_id)),
    (a.delete_managed_endpoint, dict(id="abc", virtualClusterId=vc_id)),
    (a.get_managed_endpoint_session_credentials, dict(endpointIdentifier="abc", virtualClusterIdentifier=vc_id,
                                                      executionRoleArn=role_a, credentialType="TOKEN")),
]:
    err = expect_error("ValidationException", call, **kwargs)
    check("not supported" in err.response["Error"]["Message"], f"{call.__name__}: {err.response['Error']}")
err = error_of(lambda: list(a.get_paginator("list_managed_endpoints").paginate(virtualClusterId=vc_id)))
check(err.response["Error"]["Code"] == "ValidationException", "the managed-endpoint paginator")

# --- Bad input on the wire, signed by botocore -------------------------
http = urllib3.PoolManager()


def raw(method, path, body=None, headers=None, query="", team="a"):
    url = ENDPOINT + path + ("?" + query if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    key, secret = KEYS[team]
    SigV4Auth(Credentials(key, secret), "emr-containers", REGION).add_auth(request)
    response = http.request(method, url, body=body, headers=dict(request.headers.items()), retries=False)
    return response.status, response.headers, response.data


def expect_raw(status, code, *args, **kwargs):
    got, headers, data = raw(*args, **kwargs)
    what = f"{args[0]} {args[1]} {kwargs.get('query', '')}"
    check(got == status, f"{what}: status {got}, expected {status} ({data[:200]!r})")
    check(headers.get("x-amzn-ErrorType", "").split(":")[0] == code, f"{what}: error type {headers.get('x-amzn-ErrorType')}, expected {code}")
    check(headers.get("x-amzn-RequestId"), f"{what}: no x-amzn-RequestId")
    check(json.loads(data)["message"], f"{what}: no message")


json_type = {"Content-Type": "application/json"}
jobruns = f"/virtualclusters/{vc_id}/jobruns"
before = len(a.list_job_runs(virtualClusterId=vc_id, maxResults=50)["jobRuns"])
expect_raw(400, "SerializationException", "POST", jobruns, body=b'{"name": "x",', headers=json_type)
expect_raw(400, "SerializationException", "POST", jobruns, body=b'["a list"]', headers=json_type)
expect_raw(415, "UnsupportedMediaTypeException", "POST", jobruns, body=b"name=x", headers={"Content-Type": "text/plain"})
expect_raw(400, "ValidationException", "POST", jobruns, body=b'{"name": 7}', headers=json_type)
expect_raw(400, "ValidationException", "POST", jobruns, body=b'{"unknownMember": "x"}', headers=json_type)
expect_raw(400, "ValidationException", "POST", jobruns, body=b'{"virtualClusterId": "other"}', headers=json_type)
big = json.dumps({"name": "big", "clientToken": "big", "tags": {"k": "v" * (5 * 1024 * 1024)}}).encode()
status, _, _ = raw("POST", jobruns, body=big, headers=json_type)
check(status == 413, f"a 5 MiB body answered {status}")
expect_raw(400, "ValidationException", "GET", jobruns, query="maxResults=1&maxResults=2")
expect_raw(400, "ValidationException", "GET", jobruns, query="maxResults=many")
expect_raw(400, "ValidationException", "GET", jobruns, query="color=blue")
expect_raw(400, "ValidationException", "GET", jobruns, query="states=RUNNING&states=NOT_A_STATE")
expect_raw(404, "UnknownOperationException", "GET", "/no/such/route")
expect_raw(404, "UnknownOperationException", "GET", f"/virtualclusters/{vc_id}/jobruns/")
expect_raw(405, "UnknownOperationException", "PUT", f"/virtualclusters/{vc_id}")
expect_raw(400, "ValidationException", "GET", "/virtualclusters/bad%2Fid")
expect_raw(400, "ValidationException", "GET", "/tags/arn%3Aaws%3Asqs%3Aus-west-2%3A123456789012%3Aqueue")
# sparkvc's extensions, under /sparkvc/: authorized like the rest.
logs = f"/sparkvc/virtualclusters/{vc_id}/jobruns/{run_id}/logs"
status, headers, data = raw("GET", logs, query="container=DRIVER&stream=STDOUT")
check(status == 400 and "ships no logs" in json.loads(data)["message"], f"GetJobRunLogs over REST: {status} {data!r}")
expect_raw(403, "AccessDeniedException", "GET", logs, team="b")
expect_raw(400, "ValidationException", "GET", logs, query="container=DRIVER&container=JOB_RUNNER")
# TagResource without tags, UntagResource without tagKeys: AWS's required members.
tags_path = "/tags/" + urllib.parse.quote(vc_arn, safe="")
expect_raw(400, "ValidationException", "POST", tags_path, body=b"{}", headers=json_type)
expect_raw(400, "ValidationException", "DELETE", tags_path)
after = len(a.list_job_runs(virtualClusterId=vc_id, maxResults=50)["jobRuns"])
check(after == before, f"bad input stored something: {before} runs before, {after} after")

# Unsigned, or signed with a wrong secret: refused with AWS's names.
response = http.request("GET", ENDPOINT + "/virtualclusters", retries=False)
check(response.status == 403, f"an unsigned call answered {response.status}")
check(response.headers.get("x-amzn-ErrorType", "").startswith("MissingAuthenticationTokenException"),
      f"unsigned: {response.headers.get('x-amzn-ErrorType')}")
wrong = boto3.client("emr-containers", endpoint_url=ENDPOINT, region_name=REGION,
                     aws_access_key_id=KEYS["a"][0], aws_secret_access_key="not-the-secret",
                     config=Config(retries={"max_attempts": 1}))
err = error_of(wrong.list_virtual_clusters)
check(err.response["Error"]["Code"] in ("InvalidSignatureException", "SignatureDoesNotMatch"),
      f"a wrong secret gave {err.response['Error']['Code']}")
unknown = boto3.client("emr-containers", endpoint_url=ENDPOINT, region_name=REGION,
                       aws_access_key_id="AKIANOBODY0000000000", aws_secret_access_key="x",
                       config=Config(retries={"max_attempts": 1}))
check(error_of(unknown.list_virtual_clusters).response["Error"]["Code"] == "UnrecognizedClientException",
      "an unknown key")

# --- Deletes -----------------------------------------------------------
check(a.delete_job_template(id=template_id)["id"] == template_id, "DeleteJobTemplate")
expect_error("ResourceNotFoundException", ops.describe_job_template, id=template_id)
check(a.delete_security_configuration(id=security_id)["id"] == security_id, "DeleteSecurityConfiguration")
expect_error("ResourceNotFoundException", ops.describe_security_configuration, id=security_id)

keep_vc = a.create_virtual_cluster(
    name="to-delete",
    containerProvider={"id": "local", "type": "EKS", "info": {"eksInfo": {"namespace": namespace + "-d"}}},
    tags={"team": "a"},
)["id"]
check(a.delete_virtual_cluster(id=keep_vc)["id"] == keep_vc, "DeleteVirtualCluster")
state = a.describe_virtual_cluster(id=keep_vc)["virtualCluster"]["state"]
check(state in ("TERMINATING", "TERMINATED"), f"a deleted virtual cluster is {state}")

print(json.dumps({"checks": checks, "virtualClusterId": vc_id, "jobRunId": run_id, "templatedRunId": from_template["id"]}))
