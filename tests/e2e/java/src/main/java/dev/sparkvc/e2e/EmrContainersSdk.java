package dev.sparkvc.e2e;

import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider;
import software.amazon.awssdk.core.util.VersionInfo;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.emrcontainers.EmrContainersClient;
import software.amazon.awssdk.services.emrcontainers.model.CancelJobRunResponse;
import software.amazon.awssdk.services.emrcontainers.model.Configuration;
import software.amazon.awssdk.services.emrcontainers.model.ConfigurationOverrides;
import software.amazon.awssdk.services.emrcontainers.model.ContainerInfo;
import software.amazon.awssdk.services.emrcontainers.model.ContainerProvider;
import software.amazon.awssdk.services.emrcontainers.model.ContainerProviderType;
import software.amazon.awssdk.services.emrcontainers.model.CreateVirtualClusterResponse;
import software.amazon.awssdk.services.emrcontainers.model.DeleteVirtualClusterResponse;
import software.amazon.awssdk.services.emrcontainers.model.EksInfo;
import software.amazon.awssdk.services.emrcontainers.model.EmrContainersException;
import software.amazon.awssdk.services.emrcontainers.model.JobDriver;
import software.amazon.awssdk.services.emrcontainers.model.JobRun;
import software.amazon.awssdk.services.emrcontainers.model.JobRunState;
import software.amazon.awssdk.services.emrcontainers.model.ListJobRunsRequest;
import software.amazon.awssdk.services.emrcontainers.model.ListJobRunsResponse;
import software.amazon.awssdk.services.emrcontainers.model.ResourceNotFoundException;
import software.amazon.awssdk.services.emrcontainers.model.SparkSubmitJobDriver;
import software.amazon.awssdk.services.emrcontainers.model.StartJobRunRequest;
import software.amazon.awssdk.services.emrcontainers.model.StartJobRunResponse;
import software.amazon.awssdk.services.emrcontainers.model.TagResourceResponse;
import software.amazon.awssdk.services.emrcontainers.model.ValidationException;
import software.amazon.awssdk.services.emrcontainers.model.VirtualCluster;
import software.amazon.awssdk.services.emrcontainers.model.VirtualClusterState;

/**
 * The AWS SDK for Java v2 ({@code software.amazon.awssdk:emrcontainers}), unchanged, against a
 * running sparkvc-server over the emr-containers REST protocol (restJson1, SigV4). The same
 * operations and assertions as tests/e2e/js/emr_containers.mjs.
 *
 * <p>The client is configured by {@code endpointOverride} and {@code region} only, with
 * credentials from {@link EnvironmentVariableCredentialsProvider} (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY).
 *
 * <p>Environment: SPARKVC_ENDPOINT, SPARKVC_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * SPARKVC_NAMESPACE; optional SPARKVC_CLUSTER_ID (containerProvider.id, default "local"),
 * SPARKVC_EXPECT_TERMINAL=1 (poll the first run until COMPLETED/FAILED/CANCELLED, needs a
 * cluster; otherwise it must be PENDING or SUBMITTED) and SPARKVC_TERMINAL_TIMEOUT (seconds of
 * that poll, default 240).
 *
 * <p>Every check throws on a mismatch; the process exits 1 on the first failure and prints one
 * JSON line {"checks": N, ...} when all pass.
 */
public final class EmrContainersSdk {
  private static final String ACCOUNT = "123456789012";
  private static final String ROLE = "arn:aws:iam::" + ACCOUNT + ":role/spark";
  private static final String RELEASE = "emr-7.2.0-latest";
  private static final String ENTRY_POINT = "local:///opt/spark/examples/src/main/python/pi.py";
  private static final Set<JobRunState> TERMINAL =
      Set.of(JobRunState.COMPLETED, JobRunState.FAILED, JobRunState.CANCELLED);

  private static int checks = 0;
  private static final Map<String, String> summary = new LinkedHashMap<>();

  private EmrContainersSdk() {}

  static final class CheckFailed extends RuntimeException {
    CheckFailed(String what) {
      super("check failed: " + what);
    }
  }

  private static void check(boolean condition, String what) {
    if (!condition) {
      throw new CheckFailed(what);
    }
    checks++;
  }

  private static String env(String name) {
    String value = System.getenv(name);
    if (value == null || value.isEmpty()) {
      throw new IllegalStateException(name + " is not set");
    }
    return value;
  }

  /** The exception a call throws; it must throw one. */
  private static RuntimeException errorOf(Supplier<?> call, String what) {
    try {
      call.get();
    } catch (RuntimeException err) {
      return err;
    }
    throw new CheckFailed(what + " succeeded, but an error was expected");
  }

  /** A modeled error: its class, error code, 4xx status, message and request id. */
  private static void checkModeledError(
      RuntimeException err, Class<? extends EmrContainersException> cls, int status, String what) {
    check(cls.isInstance(err), what + ": " + err + " is not a " + cls.getSimpleName());
    check(err instanceof EmrContainersException, what + ": not an EmrContainersException");
    EmrContainersException e = (EmrContainersException) err;
    check(
        cls.getSimpleName().equals(e.awsErrorDetails().errorCode()),
        what + ": error code " + e.awsErrorDetails().errorCode());
    check(
        e.statusCode() >= 400 && e.statusCode() < 500 && !e.isThrottlingException(),
        what + ": not a client fault, status " + e.statusCode());
    check(e.statusCode() == status, what + ": status " + e.statusCode() + ", expected " + status);
    String message = e.awsErrorDetails().errorMessage();
    check(message != null && !message.isEmpty(), what + ": no message");
    check(e.requestId() != null && !e.requestId().isEmpty(), what + ": no x-amzn-RequestId");
  }

  private static List<String> sorted(Collection<String> names) {
    List<String> list = new ArrayList<>(names);
    list.sort(null);
    return list;
  }

  private static JobRun describe(EmrContainersClient client, String vcId, String id) {
    return client.describeJobRun(r -> r.virtualClusterId(vcId).id(id)).jobRun();
  }

  public static void main(String[] args) {
    try {
      run();
    } catch (Throwable err) {
      err.printStackTrace();
      if (err instanceof EmrContainersException e && e.awsErrorDetails() != null) {
        var details = e.awsErrorDetails();
        System.err.println(
            "status " + e.statusCode() + ", code " + details.errorCode() + ", request id "
                + e.requestId() + ", headers " + details.sdkHttpResponse().headers());
      }
      System.exit(1);
    }
  }

  private static void run() throws InterruptedException {
    String endpoint = env("SPARKVC_ENDPOINT");
    String region = env("SPARKVC_REGION");
    env("AWS_ACCESS_KEY_ID");
    env("AWS_SECRET_ACCESS_KEY");
    String namespace = env("SPARKVC_NAMESPACE");
    String clusterId = System.getenv().getOrDefault("SPARKVC_CLUSTER_ID", "local");
    summary.put("sdk", "software.amazon.awssdk:emrcontainers");
    summary.put("version", VersionInfo.SDK_VERSION);
    summary.put("java", System.getProperty("java.version"));

    try (EmrContainersClient client =
        EmrContainersClient.builder()
            .endpointOverride(URI.create(endpoint))
            .region(Region.of(region))
            .credentialsProvider(EnvironmentVariableCredentialsProvider.create())
            .build()) {
      String suffix = UUID.randomUUID().toString().substring(0, 8);
      Instant started = Instant.now().minusSeconds(5);

      // --- CreateVirtualCluster (with tags) ------------------------------
      CreateVirtualClusterResponse vc =
          client.createVirtualCluster(
              r ->
                  r.name("java-sdk-" + suffix)
                      .containerProvider(
                          ContainerProvider.builder()
                              .id(clusterId)
                              .type(ContainerProviderType.EKS)
                              .info(
                                  ContainerInfo.fromEksInfo(
                                      EksInfo.builder().namespace(namespace).build()))
                              .build())
                      .tags(Map.of("team", "java", "sdk", "aws-sdk-java-v2"))
                      .clientToken("java-vc-" + suffix));
      check(
          vc.sdkHttpResponse().statusCode() == 200,
          "CreateVirtualCluster status " + vc.sdkHttpResponse().statusCode());
      check(Pattern.matches("[0-9a-z]{25}", vc.id()), "virtual cluster id " + vc.id());
      check(vc.name().equals("java-sdk-" + suffix), "virtual cluster name " + vc.name());
      check(
          vc.arn().equals("arn:aws:emr-containers:" + region + ":" + ACCOUNT + ":/virtualclusters/" + vc.id()),
          "virtual cluster ARN " + vc.arn());
      String vcId = vc.id();
      summary.put("virtualClusterId", vcId);

      RuntimeException failure = null;
      try {
        exercise(client, namespace, clusterId, suffix, started, vc);
      } catch (RuntimeException err) {
        failure = err;
      }
      // One running virtual cluster per namespace (as on AWS): delete this one so the program
      // can run again against the same server and namespace.
      try {
        DeleteVirtualClusterResponse deleted = client.deleteVirtualCluster(r -> r.id(vcId));
        check(vcId.equals(deleted.id()), "DeleteVirtualCluster answered " + deleted.id());
        VirtualClusterState state = client.describeVirtualCluster(r -> r.id(vcId)).virtualCluster().state();
        check(
            state == VirtualClusterState.TERMINATING || state == VirtualClusterState.TERMINATED,
            "a deleted virtual cluster is " + state);
      } catch (RuntimeException err) {
        if (failure == null) {
          throw err;
        }
        System.err.println("(cleanup failed too: " + err.getMessage() + ")");
      }
      if (failure != null) {
        throw failure;
      }
    }

    StringBuilder json = new StringBuilder("{\"checks\": ").append(checks);
    summary.forEach((k, v) -> json.append(", ").append(quote(k)).append(": ").append(quote(v)));
    System.out.println(json.append('}'));
  }

  private static void exercise(
      EmrContainersClient client,
      String namespace,
      String clusterId,
      String suffix,
      Instant started,
      CreateVirtualClusterResponse vc)
      throws InterruptedException {
    String vcId = vc.id();
    boolean expectTerminal = "1".equals(System.getenv("SPARKVC_EXPECT_TERMINAL"));
    long terminalTimeout =
        Long.parseLong(System.getenv().getOrDefault("SPARKVC_TERMINAL_TIMEOUT", "240"));

    // --- DescribeVirtualCluster ---------------------------------------------
    VirtualCluster described = client.describeVirtualCluster(r -> r.id(vcId)).virtualCluster();
    check(described.id().equals(vcId) && described.arn().equals(vc.arn()), "DescribeVirtualCluster id/arn");
    check(described.state() == VirtualClusterState.RUNNING, "virtual cluster state " + described.stateAsString());
    check(described.createdAt() != null, "virtual cluster createdAt is not a timestamp");
    check(!described.createdAt().isBefore(started), "virtual cluster createdAt " + described.createdAt());
    check(
        new TreeMap<>(described.tags()).equals(Map.of("sdk", "aws-sdk-java-v2", "team", "java")),
        "virtual cluster tags " + described.tags());
    check(clusterId.equals(described.containerProvider().id()), "containerProvider.id lost");
    check(
        namespace.equals(described.containerProvider().info().eksInfo().namespace()), "namespace lost");

    // --- StartJobRun, DescribeJobRun ----------------------------------------
    JobDriver driver =
        JobDriver.builder()
            .sparkSubmitJobDriver(
                SparkSubmitJobDriver.builder()
                    .entryPoint(ENTRY_POINT)
                    .entryPointArguments("10")
                    .sparkSubmitParameters(
                        "--conf spark.executor.instances=1 --conf spark.executor.memory=1g")
                    .build())
            .build();
    List<Configuration> appConfig =
        List.of(
            Configuration.builder()
                .classification("spark-defaults")
                .properties(Map.of("spark.driver.memory", "1g"))
                .build());
    ConfigurationOverrides overrides =
        ConfigurationOverrides.builder().applicationConfiguration(appConfig).build();
    StartJobRunRequest first =
        startInput(vcId, suffix, "0", driver)
            .configurationOverrides(overrides)
            .tags(Map.of("team", "java", "step", "0"))
            .build();

    StartJobRunResponse run = client.startJobRun(first);
    check(Pattern.matches("[0-9a-z]{19}", run.id()), "job run id " + run.id());
    check("pi-0".equals(run.name()), "StartJobRun name " + run.name());
    check(vcId.equals(run.virtualClusterId()), "StartJobRun answered another virtual cluster");
    check(run.arn().equals(vc.arn() + "/jobruns/" + run.id()), "job run ARN " + run.arn());
    String runId = run.id();
    check(client.startJobRun(first).id().equals(runId), "StartJobRun with the same clientToken started a second run");

    JobRun jobRun = describe(client, vcId, runId);
    check(
        runId.equals(jobRun.id()) && run.arn().equals(jobRun.arn()) && vcId.equals(jobRun.virtualClusterId()),
        "DescribeJobRun ids");
    check("pi-0".equals(jobRun.name()), "described name " + jobRun.name());
    check(RELEASE.equals(jobRun.releaseLabel()), "releaseLabel " + jobRun.releaseLabel());
    check(ROLE.equals(jobRun.executionRoleArn()), "executionRoleArn " + jobRun.executionRoleArn());
    check(("java-run-" + suffix + "-0").equals(jobRun.clientToken()), "clientToken " + jobRun.clientToken());
    check(jobRun.createdAt() != null, "job run createdAt is not a timestamp");
    check(jobRun.createdAt().getEpochSecond() > 0, "job run createdAt is not a valid timestamp");
    check(
        !jobRun.createdAt().isBefore(started) && jobRun.createdAt().isBefore(Instant.now().plusSeconds(60)),
        "createdAt " + jobRun.createdAt());
    check(
        ("arn:aws:iam::" + ACCOUNT + ":user/sdk").equals(jobRun.createdBy()),
        "createdBy " + jobRun.createdBy());
    check(driver.equals(jobRun.jobDriver()), "jobDriver came back as " + jobRun.jobDriver());
    check(
        jobRun.configurationOverrides() != null
            && appConfig.equals(jobRun.configurationOverrides().applicationConfiguration()),
        "applicationConfiguration came back as " + jobRun.configurationOverrides());
    check(
        new TreeMap<>(jobRun.tags()).equals(Map.of("step", "0", "team", "java")),
        "run tags " + jobRun.tags());
    check(
        jobRun.state() != null && jobRun.state() != JobRunState.UNKNOWN_TO_SDK_VERSION,
        "job run state " + jobRun.stateAsString());

    // --- More runs; ListJobRuns with a states filter; the paginator ----------
    for (String i : List.of("1", "2")) {
      StartJobRunResponse r =
          client.startJobRun(startInput(vcId, suffix, i, driver).tags(Map.of("team", "java")).build());
      check(vcId.equals(r.virtualClusterId()) && ("pi-" + i).equals(r.name()), "StartJobRun pi-" + i);
    }
    ListJobRunsResponse listed =
        client.listJobRuns(
            r ->
                r.virtualClusterId(vcId)
                    .states(
                        JobRunState.PENDING,
                        JobRunState.SUBMITTED,
                        JobRunState.RUNNING,
                        JobRunState.FAILED,
                        JobRunState.CANCELLED,
                        JobRunState.CANCEL_PENDING,
                        JobRunState.COMPLETED));
    check(
        sorted(listed.jobRuns().stream().map(JobRun::name).toList()).equals(List.of("pi-0", "pi-1", "pi-2")),
        "ListJobRuns with every state gave " + listed.jobRuns().stream().map(JobRun::name).toList());
    check(listed.jobRuns().stream().allMatch(r -> r.createdAt() != null), "listed createdAt missing");
    check(listed.nextToken() == null, "a single page has a nextToken " + listed.nextToken());
    if (!expectTerminal) {
      int pending =
          client.listJobRuns(r -> r.virtualClusterId(vcId).states(JobRunState.PENDING, JobRunState.SUBMITTED))
              .jobRuns().size();
      check(pending == 3, "states PENDING/SUBMITTED gave " + pending + " runs");
      ListJobRunsResponse none =
          client.listJobRuns(r -> r.virtualClusterId(vcId).states(JobRunState.COMPLETED, JobRunState.FAILED));
      check(none.hasJobRuns() && none.jobRuns().isEmpty(), "states COMPLETED/FAILED gave " + none.jobRuns());
    }
    // Timestamps in the query string (ISO 8601, as the SDK serializes them).
    int inWindow =
        client.listJobRuns(
                r -> r.virtualClusterId(vcId).createdAfter(started).createdBefore(Instant.now().plusSeconds(300)))
            .jobRuns().size();
    check(inWindow == 3, "createdAfter/createdBefore around the test gave " + inWindow + " runs");
    int before = client.listJobRuns(r -> r.virtualClusterId(vcId).createdBefore(started)).jobRuns().size();
    check(before == 0, "createdBefore the test gave " + before + " runs");
    List<String> named =
        client.listJobRuns(r -> r.virtualClusterId(vcId).name("pi-1")).jobRuns().stream()
            .map(JobRun::name)
            .toList();
    check(named.equals(List.of("pi-1")), "ListJobRuns name filter gave " + named);

    List<ListJobRunsResponse> pages = new ArrayList<>();
    for (ListJobRunsResponse page :
        client.listJobRunsPaginator(ListJobRunsRequest.builder().virtualClusterId(vcId).maxResults(2).build())) {
      pages.add(page);
      check(pages.size() <= 10, "the paginator does not end");
    }
    check(pages.size() == 2, "3 runs in pages of 2 came in " + pages.size() + " pages");
    check(
        pages.get(0).jobRuns().size() == 2 && pages.get(0).nextToken() != null,
        "the first page: 2 runs and a token");
    check(
        pages.get(1).jobRuns().size() == 1 && pages.get(1).nextToken() == null,
        "the last page: 1 run, no token");
    List<String> pagedIds = pages.stream().flatMap(p -> p.jobRuns().stream()).map(JobRun::id).toList();
    check(new HashSet<>(pagedIds).size() == 3, "paginated ids repeat: " + pagedIds);
    check(
        sorted(pages.stream().flatMap(p -> p.jobRuns().stream()).map(JobRun::name).toList())
            .equals(List.of("pi-0", "pi-1", "pi-2")),
        "paginated run names");
    List<String> flat = client.listJobRunsPaginator(r -> r.virtualClusterId(vcId).maxResults(2)).jobRuns()
        .stream().map(JobRun::id).toList();
    check(new HashSet<>(flat).equals(new HashSet<>(pagedIds)), "the paginator's jobRuns() iterable");

    // --- StartJobRun of another, CancelJobRun ---------------------------------
    StartJobRunResponse victim = client.startJobRun(startInput(vcId, suffix, "cancel", driver).build());
    CancelJobRunResponse cancelled =
        client.cancelJobRun(r -> r.virtualClusterId(vcId).id(victim.id()));
    check(
        victim.id().equals(cancelled.id()) && vcId.equals(cancelled.virtualClusterId()),
        "CancelJobRun answered " + cancelled);
    JobRun cancelState = null;
    for (int i = 0; i < 60; i++) {
      cancelState = describe(client, vcId, victim.id());
      if (cancelState.state() == JobRunState.CANCELLED) {
        break;
      }
      check(cancelState.state() == JobRunState.CANCEL_PENDING, "a cancelled run is " + cancelState.stateAsString());
      Thread.sleep(1000);
    }
    check(cancelState.state() == JobRunState.CANCELLED, "a cancelled run is still " + cancelState.stateAsString());
    check(cancelState.finishedAt() != null, "a cancelled run has no finishedAt");
    List<String> cancelledIds =
        client.listJobRuns(r -> r.virtualClusterId(vcId).states(JobRunState.CANCELLED)).jobRuns().stream()
            .map(JobRun::id)
            .toList();
    check(cancelledIds.contains(victim.id()), "states CANCELLED does not list the cancelled run: " + cancelledIds);

    // --- TagResource / ListTagsForResource on a run ARN ------------------------
    TagResourceResponse tagged =
        client.tagResource(r -> r.resourceArn(run.arn()).tags(Map.of("cost-center", "42", "with space", "a/b+c")));
    check(tagged.sdkHttpResponse().statusCode() == 200, "TagResource status " + tagged.sdkHttpResponse().statusCode());
    Map<String, String> tags = client.listTagsForResource(r -> r.resourceArn(run.arn())).tags();
    check(
        new TreeMap<>(tags).equals(Map.of("cost-center", "42", "step", "0", "team", "java", "with space", "a/b+c")),
        "tags after TagResource " + tags);
    Map<String, String> vcTags = client.listTagsForResource(r -> r.resourceArn(vc.arn())).tags();
    check(
        new TreeMap<>(vcTags).equals(Map.of("sdk", "aws-sdk-java-v2", "team", "java")),
        "virtual cluster tags by ARN " + vcTags);

    // --- Errors through the SDK's modeled exceptions ----------------------------
    String missingRun = "0".repeat(19);
    RuntimeException notFound =
        errorOf(() -> describe(client, vcId, missingRun), "DescribeJobRun of a run that does not exist");
    checkModeledError(notFound, ResourceNotFoundException.class, 400, "DescribeJobRun of a missing run");
    String message = ((EmrContainersException) notFound).awsErrorDetails().errorMessage();
    check(
        message.contains(missingRun) || message.toLowerCase().contains("exist"),
        "not-found message " + message);

    String missingVc = "0".repeat(25);
    RuntimeException vcNotFound =
        errorOf(
            () -> client.describeVirtualCluster(r -> r.id(missingVc)),
            "DescribeVirtualCluster of a cluster that does not exist");
    checkModeledError(vcNotFound, ResourceNotFoundException.class, 400, "DescribeVirtualCluster of a missing id");

    RuntimeException badVc =
        errorOf(() -> client.describeVirtualCluster(r -> r.id("bad/id")), "DescribeVirtualCluster of a malformed id");
    checkModeledError(badVc, ValidationException.class, 400, "DescribeVirtualCluster of a malformed id");

    // --- The first run: PENDING without a cluster, or polled to its end --------
    JobRun finalRun;
    if (expectTerminal) {
      Instant deadline = Instant.now().plus(Duration.ofSeconds(terminalTimeout));
      for (; ; ) {
        finalRun = describe(client, vcId, runId);
        if (TERMINAL.contains(finalRun.state())) {
          break;
        }
        check(
            Instant.now().isBefore(deadline),
            "run " + runId + " still " + finalRun.stateAsString() + " after " + terminalTimeout + " s");
        Thread.sleep(2000);
      }
      check(finalRun.finishedAt() != null, "a finished run has no finishedAt");
      check(!finalRun.finishedAt().isBefore(finalRun.createdAt()), "finishedAt is before createdAt");
    } else {
      finalRun = describe(client, vcId, runId);
      check(
          finalRun.state() == JobRunState.PENDING || finalRun.state() == JobRunState.SUBMITTED,
          "without a cluster the run is " + finalRun.stateAsString());
      check(finalRun.finishedAt() == null, "a pending run has a finishedAt");
    }

    summary.put("jobRunId", runId);
    summary.put("cancelledJobRunId", victim.id());
    summary.put("finalState", finalRun.stateAsString());
    if (finalRun.failureReason() != null) {
      summary.put("failureReason", finalRun.failureReasonAsString());
    }
  }

  /** A JSON string (the summary's values are ids and versions, but escape anyway). */
  private static String quote(String s) {
    StringBuilder out = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') {
        out.append('\\').append(c);
      } else if (c < 0x20) {
        out.append(String.format("\\u%04x", (int) c));
      } else {
        out.append(c);
      }
    }
    return out.append('"').toString();
  }

  private static StartJobRunRequest.Builder startInput(String vcId, String suffix, String i, JobDriver driver) {
    return StartJobRunRequest.builder()
        .name("pi-" + i)
        .virtualClusterId(vcId)
        .clientToken("java-run-" + suffix + "-" + i)
        .executionRoleArn(ROLE)
        .releaseLabel(RELEASE)
        .jobDriver(driver);
  }
}
