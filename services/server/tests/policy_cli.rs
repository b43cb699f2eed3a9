//! `sparkvc-policy` against the example identity store: the decision and
//! the statement that decided, and the exit status.

use std::process::Command;

fn simulate(args: &[&str]) -> (i32, serde_json::Value) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");
    let out = Command::new(env!("CARGO_BIN_EXE_sparkvc-policy"))
        .arg("simulate")
        .args(["--identities", &format!("{root}/identities.example.toml")])
        .args(["--principal", "arn:aws:iam::123456789012:user/team-a-admin"])
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out.status.code().unwrap(), json)
}

#[test]
fn simulate_names_the_deciding_statement() {
    let vc = "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/abc";
    let (code, out) = simulate(&[
        "--action",
        "emr-containers:StartJobRun",
        "--resource",
        vc,
        "--context",
        "aws:ResourceTag/team=a",
    ]);
    assert_eq!(code, 0);
    assert_eq!(out["EvalDecision"], "allowed");
    assert_eq!(out["MatchedStatement"], "tenant#OwnTeamsResources");
    let (code, out) = simulate(&[
        "--action",
        "emr-containers:StartJobRun",
        "--resource",
        vc,
        "--context",
        "aws:ResourceTag/team=b",
    ]);
    assert_eq!(code, 1);
    assert_eq!(out["EvalDecision"], "implicitDeny");
    let (code, out) = simulate(&[
        "--action",
        "iam:PassRole",
        "--resource",
        "arn:aws:iam::123456789012:role/a-spark",
    ]);
    assert_eq!(
        (code, &out["EvalDecision"]),
        (0, &serde_json::json!("allowed"))
    );
    let (code, _) = simulate(&["--action", "x:y", "--context", "novalue"]);
    assert_eq!(code, 2);
}
