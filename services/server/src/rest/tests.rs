use super::*;

fn route(operation: &str) -> &'static Route {
    ROUTES.iter().find(|r| r.operation == operation).unwrap()
}

#[test]
fn paths_match_their_routes_and_decode_labels() {
    let arn = "arn%3Aaws%3Aemr-containers%3Aus-east-1%3A123456789012%3A%2Fvirtualclusters%2Fabc";
    match find("POST", &format!("/tags/{arn}")) {
        Matched::Route(r, labels) => {
            assert_eq!(r.operation, "TagResource");
            assert_eq!(
                labels,
                [(
                    "resourceArn",
                    "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/abc"
                        .to_string()
                )]
            );
        }
        other => panic!("{other:?}"),
    }
    match find("DELETE", "/virtualclusters/vc1/jobruns/run1") {
        Matched::Route(r, labels) => {
            assert_eq!(r.operation, "CancelJobRun");
            assert_eq!(
                labels,
                [("virtualClusterId", "vc1".into()), ("id", "run1".into())]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(find("PUT", "/virtualclusters"), Matched::WrongMethod);
    assert_eq!(find("GET", "/virtualclusters//jobruns"), Matched::None);
    assert_eq!(find("GET", "/nothing"), Matched::None);
    assert_eq!(
        find("GET", "/virtualclusters/vc1/endpoints"),
        Matched::Unimplemented("ListManagedEndpoints")
    );
}

#[test]
fn query_members_are_typed_and_lists_repeat_their_key() {
    let value = input(
        route("ListJobRuns"),
        vec![("virtualClusterId", "vc1".into())],
        Some("states=RUNNING&states=PENDING&maxResults=5&createdAfter=2026-01-02T03%3A04%3A05Z"),
        None,
        b"",
    )
    .unwrap();
    assert_eq!(
        value,
        serde_json::json!({
            "virtualClusterId": "vc1",
            "states": ["RUNNING", "PENDING"],
            "maxResults": 5,
            "createdAfter": "2026-01-02T03:04:05Z",
        })
    );
}

#[test]
fn bad_queries_name_the_parameter() {
    let list = route("ListVirtualClusters");
    let err = input(list, vec![], Some("maxResults=ten"), None, b"").unwrap_err();
    assert_eq!(err.code, "ValidationException");
    assert!(err.message.contains("maxResults"), "{}", err.message);
    let err = input(list, vec![], Some("nextToken=a&nextToken=b"), None, b"").unwrap_err();
    assert!(err.message.contains("more than once"), "{}", err.message);
    let err = input(list, vec![], Some("colour=red"), None, b"").unwrap_err();
    assert!(
        err.message.contains("'colour' is not a query parameter"),
        "{}",
        err.message
    );
    let err = input(
        list,
        vec![],
        Some("eksAccessEntryIntegrated=yes"),
        None,
        b"",
    )
    .unwrap_err();
    assert!(err.message.contains("true or false"), "{}", err.message);
    // A label is not a query parameter too.
    let err = input(
        route("DescribeJobRun"),
        vec![("virtualClusterId", "a".into()), ("id", "b".into())],
        Some("id=c"),
        None,
        b"",
    )
    .unwrap_err();
    assert!(
        err.message.contains("'id' is not a query parameter"),
        "{}",
        err.message
    );
}

#[test]
fn bodies_must_be_json_objects_of_the_right_type() {
    let start = route("StartJobRun");
    let labels = || vec![("virtualClusterId", "vc1".to_string())];
    let ok = input(
        start,
        labels(),
        None,
        Some("application/json"),
        br#"{"name":"a"}"#,
    )
    .unwrap();
    assert_eq!(
        ok,
        serde_json::json!({"name": "a", "virtualClusterId": "vc1"})
    );
    let err = input(
        start,
        labels(),
        None,
        Some("application/json"),
        b"{\"name\":",
    )
    .unwrap_err();
    assert_eq!(
        (err.status, err.code.as_str()),
        (400, "SerializationException")
    );
    let err = input(start, labels(), None, Some("application/json"), b"[1]").unwrap_err();
    assert_eq!(err.code, "SerializationException");
    let err = input(start, labels(), None, Some("text/plain"), b"{}").unwrap_err();
    assert_eq!(
        (err.status, err.code.as_str()),
        (415, "UnsupportedMediaTypeException")
    );
    let err = input(
        start,
        labels(),
        None,
        Some("application/json"),
        br#"{"virtualClusterId":"other"}"#,
    )
    .unwrap_err();
    assert!(err.message.contains("in the path"), "{}", err.message);
    let err = input(start, labels(), Some("name=x"), None, b"").unwrap_err();
    assert!(
        err.message.contains("takes no query string"),
        "{}",
        err.message
    );
    let err = input(route("ListJobTemplates"), vec![], None, None, b"{\"a\":1}").unwrap_err();
    assert!(err.message.contains("has no body"), "{}", err.message);
}

#[test]
fn service_errors_keep_their_aws_name_at_awss_status() {
    let not_found = crate::api::to_status(crate::error::ApiError::not_found(
        "Job run x doesn't exist.",
    ));
    let err = RestError::from_status(&not_found);
    assert_eq!(
        (err.status, err.code.as_str()),
        (400, "ResourceNotFoundException")
    );
    let denied = crate::api::to_status(crate::error::ApiError::AccessDenied("no".into()));
    assert_eq!(RestError::from_status(&denied).status, 403);
    let response: http::Response<String> = err.into_response();
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        "ResourceNotFoundException"
    );
    assert_eq!(response.body(), r#"{"message":"Job run x doesn't exist."}"#);
}
