//! IAM's evaluation rules, one by one.

use super::*;

const VC: &str = "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/vc1";
const RUN: &str = "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/vc1/jobruns/r1";

fn policy(json: &str) -> Policy {
    Policy::parse("p", json).unwrap_or_else(|e| panic!("{e}"))
}

fn decide(policies: &[Policy], action: &str, resource: &str, context: &Context) -> Decision {
    evaluate(
        policies,
        Question {
            action,
            resource,
            context,
        },
    )
}

fn allowed(p: &Policy, action: &str, resource: &str, context: &Context) -> bool {
    decide(std::slice::from_ref(p), action, resource, context).is_allowed()
}

fn ctx(pairs: &[(&str, &str)]) -> Context {
    let mut c = Context::default();
    for (k, v) in pairs {
        c.set(k, *v);
    }
    c
}

#[test]
fn default_deny_one_allow_and_explicit_deny_wins() {
    let none = Context::default();
    assert_eq!(
        decide(&[], "emr-containers:DescribeJobRun", RUN, &none),
        Decision::ImplicitDeny
    );
    let allow = policy(
        r#"{"Version":"2012-10-17","Statement":{"Sid":"read","Effect":"Allow","Action":"emr-containers:Describe*","Resource":"*"}}"#,
    );
    assert_eq!(
        decide(
            std::slice::from_ref(&allow),
            "emr-containers:DescribeJobRun",
            RUN,
            &none
        ),
        Decision::Allow {
            policy: "p".into(),
            sid: Some("read".into())
        }
    );
    let deny = Policy::parse(
        "guard",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"no","Effect":"Deny","Action":"emr-containers:*","Resource":"*/jobruns/*"}]}"#,
    )
    .unwrap();
    let both = [allow, deny];
    let d = decide(&both, "emr-containers:DescribeJobRun", RUN, &none);
    assert_eq!(d.statement().as_deref(), Some("guard#no"));
    assert!(!d.is_allowed());
    assert!(decide(&both, "emr-containers:DescribeVirtualCluster", VC, &none).is_allowed());
}

#[test]
fn actions_ignore_case_resources_do_not() {
    let p = policy(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"EMR-Containers:describejobrun","Resource":"arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/VC1/*"}}"#,
    );
    let none = Context::default();
    assert!(!allowed(&p, "emr-containers:DescribeJobRun", RUN, &none));
    let upper = RUN.replace("vc1", "VC1");
    assert!(allowed(&p, "emr-containers:DescribeJobRun", &upper, &none));
}

#[test]
fn not_action_and_not_resource_invert() {
    let p = policy(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotAction":"emr-containers:Delete*","NotResource":"arn:aws:emr-containers:*:*:/virtualclusters/secret*"}}"#,
    );
    let none = Context::default();
    assert!(allowed(
        &p,
        "emr-containers:DescribeVirtualCluster",
        VC,
        &none
    ));
    assert!(!allowed(
        &p,
        "emr-containers:DeleteVirtualCluster",
        VC,
        &none
    ));
    let secret = VC.replace("vc1", "secret1");
    assert!(!allowed(
        &p,
        "emr-containers:DescribeVirtualCluster",
        &secret,
        &none
    ));
}

#[test]
fn execution_roles_are_limited_with_arn_and_string_operators() {
    let p = policy(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"emr-containers:StartJobRun","Resource":"arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/vc1",
             "Condition":{"ArnLike":{"emr-containers:ExecutionRoleArn":["arn:aws:iam::123456789012:role/team-a-*"]}}}
        ]}"#,
    );
    let role = |r: &str| ctx(&[("emr-containers:ExecutionRoleArn", r)]);
    assert!(allowed(
        &p,
        "emr-containers:StartJobRun",
        VC,
        &role("arn:aws:iam::123456789012:role/team-a-etl")
    ));
    assert!(!allowed(
        &p,
        "emr-containers:StartJobRun",
        VC,
        &role("arn:aws:iam::123456789012:role/team-b-etl")
    ));
    assert!(
        !allowed(&p, "emr-containers:StartJobRun", VC, &Context::default()),
        "absent key: false"
    );
}

#[test]
fn negated_operators_and_if_exists_on_absent_keys() {
    let p = |op: &str| {
        policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{{"{op}":{{"aws:ResourceTag/team":"a"}}}}}}}}"#
        ))
    };
    let none = Context::default();
    let team = |t: &str| ctx(&[("aws:ResourceTag/team", t)]);
    assert!(!allowed(&p("StringEquals"), "x:y", "*", &none));
    assert!(allowed(&p("StringNotEquals"), "x:y", "*", &none));
    assert!(allowed(&p("StringEqualsIfExists"), "x:y", "*", &none));
    assert!(allowed(&p("StringEqualsIfExists"), "x:y", "*", &team("a")));
    assert!(!allowed(&p("StringEqualsIfExists"), "x:y", "*", &team("b")));
    assert!(!allowed(&p("StringNotEquals"), "x:y", "*", &team("a")));
    assert!(allowed(
        &p("StringEqualsIgnoreCase"),
        "x:y",
        "*",
        &team("A")
    ));
    assert!(allowed(&p("StringLike"), "x:y", "*", &team("a")));
}

#[test]
fn tag_based_access_through_policy_variables() {
    let p = policy(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"emr-containers:*","Resource":"*",
            "Condition":{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}}}"#,
    );
    let mut c = ctx(&[
        ("aws:PrincipalTag/team", "a"),
        ("aws:ResourceTag/team", "a"),
    ]);
    assert!(allowed(&p, "emr-containers:DescribeVirtualCluster", VC, &c));
    c.set("aws:ResourceTag/team", "b");
    assert!(!allowed(
        &p,
        "emr-containers:DescribeVirtualCluster",
        VC,
        &c
    ));
    // No principal tag: the variable has no value and the condition fails.
    let untagged = ctx(&[("aws:ResourceTag/team", "")]);
    assert!(!allowed(
        &p,
        "emr-containers:DescribeVirtualCluster",
        VC,
        &untagged
    ));
    // Version 2008-10-17 takes the text literally.
    let old = policy(
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*",
            "Condition":{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}}}"#,
    );
    assert!(!allowed(
        &old,
        "x:y",
        "*",
        &ctx(&[
            ("aws:ResourceTag/team", "a"),
            ("aws:PrincipalTag/team", "a")
        ])
    ));
}

#[test]
fn set_qualifiers_and_the_for_all_values_hole() {
    let all = policy(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*",
            "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["team","cost-center"]}}}}"#,
    );
    let any = policy(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*",
            "Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["team"]}}}}"#,
    );
    let keys = |k: &[&str]| {
        let mut c = Context::default();
        c.set_many("aws:TagKeys", k.iter().map(|s| s.to_string()).collect());
        c
    };
    assert!(allowed(&all, "x:y", "*", &keys(&["team"])));
    assert!(!allowed(&all, "x:y", "*", &keys(&["team", "owner"])));
    // The classic hole: no tags at all satisfies ForAllValues.
    assert!(allowed(&all, "x:y", "*", &keys(&[])));
    assert!(allowed(&all, "x:y", "*", &Context::default()));
    assert!(allowed(&any, "x:y", "*", &keys(&["owner", "team"])));
    assert!(!allowed(&any, "x:y", "*", &keys(&["owner"])));
    assert!(!allowed(&any, "x:y", "*", &keys(&[])));
}

#[test]
fn null_numeric_date_bool_and_ip() {
    let cond = |c: &str| {
        policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{c}}}}}"#
        ))
    };
    let none = Context::default();
    let tagged = ctx(&[("aws:RequestTag/team", "a")]);
    assert!(allowed(
        &cond(r#"{"Null":{"aws:RequestTag/team":"true"}}"#),
        "x:y",
        "*",
        &none
    ));
    assert!(!allowed(
        &cond(r#"{"Null":{"aws:RequestTag/team":"true"}}"#),
        "x:y",
        "*",
        &tagged
    ));
    assert!(allowed(
        &cond(r#"{"Null":{"aws:RequestTag/team":"false"}}"#),
        "x:y",
        "*",
        &tagged
    ));
    let n = cond(r#"{"NumericLessThan":{"sparkvc:Attempts":10}}"#);
    assert!(allowed(&n, "x:y", "*", &ctx(&[("sparkvc:Attempts", "3")])));
    assert!(!allowed(
        &n,
        "x:y",
        "*",
        &ctx(&[("sparkvc:Attempts", "10")])
    ));
    let d = cond(r#"{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#);
    assert!(allowed(
        &d,
        "x:y",
        "*",
        &ctx(&[("aws:CurrentTime", "2026-12-03T12:00:00Z")])
    ));
    assert!(!allowed(
        &d,
        "x:y",
        "*",
        &ctx(&[("aws:CurrentTime", "2031-01-01T00:00:00Z")])
    ));
    let b = cond(r#"{"Bool":{"aws:SecureTransport":false}}"#);
    assert!(allowed(
        &b,
        "x:y",
        "*",
        &ctx(&[("aws:SecureTransport", "false")])
    ));
    assert!(!allowed(
        &b,
        "x:y",
        "*",
        &ctx(&[("aws:SecureTransport", "true")])
    ));
    let ip = cond(r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","::1"]}}"#);
    assert!(allowed(
        &ip,
        "x:y",
        "*",
        &ctx(&[("aws:SourceIp", "10.1.2.3")])
    ));
    assert!(allowed(&ip, "x:y", "*", &ctx(&[("aws:SourceIp", "::1")])));
    assert!(!allowed(
        &ip,
        "x:y",
        "*",
        &ctx(&[("aws:SourceIp", "192.168.0.1")])
    ));
    let not_ip = cond(r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#);
    assert!(allowed(
        &not_ip,
        "x:y",
        "*",
        &ctx(&[("aws:SourceIp", "192.168.0.1")])
    ));
}

#[test]
fn conditions_and_across_operators_and_keys_or_across_values() {
    let p = policy(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
            "StringEquals":{"aws:ResourceTag/team":["a","b"],"aws:ResourceTag/env":"prod"},
            "Bool":{"aws:SecureTransport":"false"}}}}"#,
    );
    let c = |team: &str, env: &str| {
        ctx(&[
            ("aws:ResourceTag/team", team),
            ("aws:ResourceTag/env", env),
            ("aws:SecureTransport", "false"),
        ])
    };
    assert!(allowed(&p, "x:y", "*", &c("b", "prod")));
    assert!(!allowed(&p, "x:y", "*", &c("b", "dev")));
    assert!(!allowed(&p, "x:y", "*", &c("c", "prod")));
}

#[test]
fn bad_documents_name_the_statement_and_the_field() {
    let err = |json: &str| Policy::parse("team-a", json).unwrap_err().to_string();
    assert_eq!(
        err(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Permit","Action":"*","Resource":"*"}]}"#
        ),
        "policy team-a: Statement[1].Effect: must be \"Allow\" or \"Deny\""
    );
    assert!(
        err(r#"{"Statement":{"Effect":"Allow","Action":"*"}}"#).contains(
            "Statement[0].Resource: a statement needs exactly one of Resource and NotResource"
        )
    );
    assert!(err(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqualz":{"k":"v"}}}}"#).contains("Statement[0].Condition.StringEqualz: \"StringEqualz\" is not a condition operator"));
    assert!(
        err(r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}"#)
            .contains("identity-based policies name no principal")
    );
    assert!(err(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"StartJobRun","Resource":"*"}}"#).contains("is not service:action"));
    assert!(err(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"ten"}}}}"#).contains("is not an IP address"));
    assert!(err("[]").contains("must be a JSON object"));
    assert!(err(r#"{"Version":"2020-01-01","Statement":[]}"#).contains("Version"));
}
