//! `sparkvc-policy`: the server's policy decisions, offline.
//!
//! ```text
//! sparkvc-policy check --identities identities.toml
//! sparkvc-policy simulate --identities identities.toml \
//!     --principal arn:aws:iam::123456789012:user/alice \
//!     --action emr-containers:StartJobRun \
//!     --resource arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/abc \
//!     --context emr-containers:ExecutionRoleArn=arn:aws:iam::123456789012:role/a-spark \
//!     --context aws:ResourceTag/team=a
//! ```
//!
//! `simulate` prints the decision (allowed, explicitDeny or implicitDeny)
//! and the statement that decided, like `aws iam simulate-principal-policy`,
//! evaluating exactly what the server evaluates. Repeating a `--context`
//! key gives it several values (`aws:TagKeys`). Exit status: 0 allowed,
//! 1 denied, 2 bad input.

use clap::{Parser, Subcommand};
use sparkvc_server::auth::Access;
use sparkvc_server::auth::identities::Identities;
use sparkvc_server::auth::policy::{self, Decision, Question};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "sparkvc-policy",
    version,
    about = "Check an identity store and simulate its policy decisions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the identity store and its policies as the server would.
    Check {
        #[arg(long)]
        identities: PathBuf,
    },
    /// Print the decision for one principal, action, resource and context.
    Simulate {
        #[arg(long)]
        identities: PathBuf,
        /// The principal's ARN, as in the identity store.
        #[arg(long)]
        principal: String,
        /// `emr-containers:StartJobRun`, `iam:PassRole`, `sparkvc:GetJobRunLogs`, …
        #[arg(long)]
        action: String,
        /// The resource ARN (`*` for actions on no resource).
        #[arg(long, default_value = "*")]
        resource: String,
        /// KEY=VALUE condition keys besides the principal's own.
        #[arg(long = "context", value_name = "KEY=VALUE")]
        context: Vec<String>,
        /// The caller's address (`aws:SourceIp`).
        #[arg(long)]
        source_ip: Option<std::net::IpAddr>,
        /// Simulate a call over plaintext (`aws:SecureTransport` false);
        /// calls are over TLS otherwise.
        #[arg(long)]
        plaintext: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let load = |path: &PathBuf| {
        Identities::load(path).map_err(|e| {
            eprintln!("{e}");
            ExitCode::from(2)
        })
    };
    match cli.command {
        Command::Check { identities } => match load(&identities) {
            Ok(ids) => {
                println!(
                    "{}: {} principals, valid",
                    identities.display(),
                    ids.principal_count()
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Simulate {
            identities,
            principal,
            action,
            resource,
            context,
            source_ip,
            plaintext,
        } => {
            let ids = match load(&identities) {
                Ok(ids) => ids,
                Err(code) => return code,
            };
            let Some(caller) = ids.caller(&principal) else {
                eprintln!("{}: no principal {principal}", identities.display());
                return ExitCode::from(2);
            };
            let mut ctx = caller.context(source_ip, !plaintext);
            let mut extra: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for pair in &context {
                let Some((key, value)) = pair.split_once('=') else {
                    eprintln!("--context {pair:?} is not KEY=VALUE");
                    return ExitCode::from(2);
                };
                extra.entry(key).or_default().push(value.to_string());
            }
            for (key, values) in extra {
                ctx.set_many(key, values);
            }
            let Access::Policies(policies) = &caller.access else {
                unreachable!("identity-store callers are held to policies");
            };
            let decision = policy::evaluate(
                policies,
                Question {
                    action: &action,
                    resource: &resource,
                    context: &ctx,
                },
            );
            let (word, code) = match &decision {
                Decision::Allow { .. } => ("allowed", ExitCode::SUCCESS),
                Decision::ExplicitDeny { .. } => ("explicitDeny", ExitCode::from(1)),
                Decision::ImplicitDeny => ("implicitDeny", ExitCode::from(1)),
            };
            println!(
                "{}",
                serde_json::json!({
                    "EvalActionName": action,
                    "EvalResourceName": resource,
                    "EvalDecision": word,
                    "MatchedStatement": decision.statement(),
                })
            );
            code
        }
    }
}
