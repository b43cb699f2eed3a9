//! Running a parsed command: build the request, call the server, print.
//!
//! Requests are built (and flag errors reported) before connecting, so a
//! bad command line fails the same way whether or not a server is up.

use crate::args::{Cli, Command};
use crate::client;
use crate::debug;
use crate::error::CliError;
use crate::output::{self, Keyed};
use crate::paginate::{Collector, Resume};
use crate::requests;
use crate::skeleton;
use crate::wait;
use sparkvc_proto::v1::DescribeJobRunRequest;
use std::time::Duration;

/// One call whose response is printed as is.
macro_rules! simple_call {
    ($target:expr, $operation:expr, $method:ident, $request:expr) => {{
        let request = $request?;
        debug::request($operation, &request);
        let mut client = client::connect($target).await?;
        let response = client
            .$method(request)
            .await
            .map_err(|status| CliError::from_status($operation, &$target.url, &status))?
            .into_inner();
        output::print(&response);
    }};
}

/// A list call, paginated as described in `paginate`.
macro_rules! list_call {
    ($target:expr, $operation:expr, $method:ident, $request:expr, $paging:expr, $items:ident, $key:literal) => {{
        let request = $request?;
        debug::request($operation, &request);
        let paging = $paging;
        let mut client = client::connect($target).await?;
        if paging.no_paginate {
            let mut request = request;
            if let Some(token) = &paging.starting_token {
                request.next_token = Resume::decode(token).next_token.unwrap_or_default();
            }
            let response = client
                .$method(request)
                .await
                .map_err(|status| CliError::from_status($operation, &$target.url, &status))?
                .into_inner();
            output::print(
                &Keyed::new($key, &response.$items)
                    .with_token("nextToken", Some(&response.next_token)),
            );
        } else {
            let start = match &paging.starting_token {
                Some(token) => Resume::decode(token),
                None => Resume {
                    next_token: Some(request.next_token.clone()),
                    skip: 0,
                },
            };
            let mut collector = Collector::new(start, paging.max_items.map(|n| n as usize));
            while let Some(token) = collector.next_request().map(|t| t.map(str::to_string)) {
                let mut page_request = request.clone();
                page_request.next_token = token.unwrap_or_default();
                let response = client
                    .$method(page_request)
                    .await
                    .map_err(|status| CliError::from_status($operation, &$target.url, &status))?
                    .into_inner();
                collector.accept(response.$items, &response.next_token);
            }
            let (items, next_token) = collector.finish();
            output::print(&Keyed::new($key, &items).with_token("NextToken", next_token.as_deref()));
        }
    }};
}

pub async fn run(cli: &Cli) -> Result<(), CliError> {
    let op = cli.command.operation();
    if let Some(kind) = cli.generate_cli_skeleton {
        let skeleton = skeleton::Api::sparkvc()
            .and_then(|api| api.skeleton(op, kind))
            .map_err(|e| CliError::Internal(format!("--generate-cli-skeleton: {e}")))?;
        output::print_skeleton(&skeleton);
        return Ok(());
    }
    let target = &client::Target::from_cli(cli);
    let url = target.url.as_str();
    match &cli.command {
        Command::CreateVirtualCluster(a) => simple_call!(
            target,
            op,
            create_virtual_cluster,
            requests::create_virtual_cluster(a)
        ),
        Command::DescribeVirtualCluster(a) => simple_call!(
            target,
            op,
            describe_virtual_cluster,
            requests::describe_virtual_cluster(a)
        ),
        Command::ListVirtualClusters(a) => list_call!(
            target,
            op,
            list_virtual_clusters,
            requests::list_virtual_clusters(a),
            &a.paging,
            virtual_clusters,
            "virtualClusters"
        ),
        Command::UpdateVirtualCluster(a) => simple_call!(
            target,
            op,
            update_virtual_cluster,
            requests::update_virtual_cluster(a)
        ),
        Command::DeleteVirtualCluster(a) => simple_call!(
            target,
            op,
            delete_virtual_cluster,
            requests::delete_virtual_cluster(a)
        ),
        Command::StartJobRun(a) => {
            let request = requests::start_job_run(a)?;
            debug::request(op, &request);
            let mut client = client::connect(target).await?;
            let virtual_cluster_id = request.virtual_cluster_id.clone();
            let response = client
                .start_job_run(request)
                .await
                .map_err(|status| CliError::from_status(op, url, &status))?
                .into_inner();
            if !a.wait {
                output::print(&response);
                return Ok(());
            }
            eprintln!(
                "started job run {} in virtual cluster {}",
                response.id, virtual_cluster_id
            );
            let describe = DescribeJobRunRequest {
                id: response.id.clone(),
                virtual_cluster_id: if response.virtual_cluster_id.is_empty() {
                    virtual_cluster_id
                } else {
                    response.virtual_cluster_id.clone()
                },
            };
            let interval = Duration::from_secs_f64(a.poll_interval);
            let last = wait::until_done(&mut client, url, describe, interval).await?;
            output::print(&last);
            if let Some(err) = wait::outcome(&last.job_run.unwrap_or_default()) {
                return Err(err);
            }
        }
        Command::GetJobRunAppUiUrl(a) => simple_call!(
            target,
            op,
            get_job_run_app_ui_url,
            requests::get_job_run_app_ui_url(a)
        ),
        Command::GetJobRunLogs(a) => {
            let request = requests::get_job_run_logs(a)?;
            debug::request(op, &request);
            let mut client = client::connect(target).await?;
            let describe = DescribeJobRunRequest {
                id: request.id.clone(),
                virtual_cluster_id: request.virtual_cluster_id.clone(),
            };
            let mut request = request;
            let mut shown_location = false;
            loop {
                // Whether the run had ended before this read: then the read
                // has everything shipped, and following can stop after it.
                let ended = if a.follow {
                    let run = client
                        .describe_job_run(describe.clone())
                        .await
                        .map_err(|status| CliError::from_status("DescribeJobRun", url, &status))?
                        .into_inner()
                        .job_run
                        .unwrap_or_default();
                    wait::is_terminal(&run.state)
                } else {
                    true
                };
                let page = client
                    .get_job_run_logs(request.clone())
                    .await
                    .map_err(|status| CliError::from_status(op, url, &status))?
                    .into_inner();
                if !shown_location {
                    eprintln!("logs from {}", page.location);
                    shown_location = true;
                }
                for line in &page.lines {
                    println!("{line}");
                }
                // Read on until a read brings nothing new (CloudWatch pages
                // its answers); when following, until that happens after
                // the run ended.
                if ended && page.lines.is_empty() {
                    break;
                }
                if page.lines.is_empty() {
                    tokio::time::sleep(Duration::from_secs_f64(a.poll_interval)).await;
                }
                request.next_token = page.next_token;
            }
        }
        Command::DescribeJobRun(a) => {
            simple_call!(target, op, describe_job_run, requests::describe_job_run(a))
        }
        Command::ListJobRuns(a) => list_call!(
            target,
            op,
            list_job_runs,
            requests::list_job_runs(a),
            &a.paging,
            job_runs,
            "jobRuns"
        ),
        Command::CancelJobRun(a) => {
            simple_call!(target, op, cancel_job_run, requests::cancel_job_run(a))
        }
        Command::CreateJobTemplate(a) => simple_call!(
            target,
            op,
            create_job_template,
            requests::create_job_template(a)
        ),
        Command::DescribeJobTemplate(a) => simple_call!(
            target,
            op,
            describe_job_template,
            requests::describe_job_template(a)
        ),
        Command::ListJobTemplates(a) => list_call!(
            target,
            op,
            list_job_templates,
            requests::list_job_templates(a),
            &a.paging,
            templates,
            "templates"
        ),
        Command::DeleteJobTemplate(a) => simple_call!(
            target,
            op,
            delete_job_template,
            requests::delete_job_template(a)
        ),
        Command::CreateSecurityConfiguration(a) => simple_call!(
            target,
            op,
            create_security_configuration,
            requests::create_security_configuration(a)
        ),
        Command::DescribeSecurityConfiguration(a) => simple_call!(
            target,
            op,
            describe_security_configuration,
            requests::describe_security_configuration(a)
        ),
        Command::ListSecurityConfigurations(a) => list_call!(
            target,
            op,
            list_security_configurations,
            requests::list_security_configurations(a),
            &a.paging,
            security_configurations,
            "securityConfigurations"
        ),
        Command::DeleteSecurityConfiguration(a) => simple_call!(
            target,
            op,
            delete_security_configuration,
            requests::delete_security_configuration(a)
        ),
        Command::TagResource(a) => {
            simple_call!(target, op, tag_resource, requests::tag_resource(a))
        }
        Command::UntagResource(a) => {
            simple_call!(target, op, untag_resource, requests::untag_resource(a))
        }
        Command::ListTagsForResource(a) => {
            let request = requests::list_tags_for_resource(a)?;
            debug::request(op, &request);
            let mut client = client::connect(target).await?;
            let response = client
                .list_tags_for_resource(request)
                .await
                .map_err(|status| CliError::from_status(op, url, &status))?
                .into_inner();
            output::print(&Keyed::new("tags", &response.tags));
        }
    }
    Ok(())
}
