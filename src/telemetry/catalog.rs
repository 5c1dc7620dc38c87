//! What each metric means: the `# HELP` line of `/metrics`. Every metric the daemon records
//! is listed here; a test fails naming any that is not.

/// Name and help text of every metric.
pub const METRICS: &[(&str, &str)] = &[
    (
        "cluster_fenced_writes_total",
        "Writes refused because the lease guarding them is no longer held by this replica, by lease.",
    ),
    (
        "cluster_lease_changes_total",
        "Work leases acquired, lost and released by this replica, by lease and change.",
    ),
    (
        "cluster_lease_held",
        "1 while this replica holds the lease (owns the work), 0 while it follows, by lease.",
    ),
    (
        "cluster_leases_held",
        "Work leases this replica holds (0: a follower).",
    ),
    (
        "contact_events_total",
        "Contact events stored, by connector and kind (offered, connected, ended, recording_available).",
    ),
    (
        "connector_events_total",
        "Contact-center events by connector and outcome (accepted, duplicate, stale, unknown_agent, out_of_range, ...).",
    ),
    (
        "connector_webhook_rejected_total",
        "Inbound contact-center webhook requests refused, by connector and reason.",
    ),
    (
        "alerts_sent_total",
        "Alert deliveries by sink and outcome (sent, retried, rejected).",
    ),
    (
        "alerts_firing",
        "Alert conditions firing now, by condition.",
    ),
    (
        "queue_jobs_total",
        "Attempts at jobs of the durable work queue, by queue and outcome (done, deferred, failed).",
    ),
    (
        "dynamics_steps_total",
        "Dynamics 365 contact steps by environment, step and outcome (done, throttled, failed, waiting, rejected, input_missing, template_error, skipped, already_done).",
    ),
    (
        "engine_decisions_total",
        "Sync decisions by direction and outcome (written, held down, echo, no rule, ...).",
    ),
    (
        "engine_flap_suspensions_total",
        "Users suspended by the oscillation breaker.",
    ),
    (
        "engine_inbox_items_total",
        "Inbox items processed by the engine, by kind and outcome.",
    ),
    (
        "engine_matched_users",
        "Users matched to a contact-center agent after the last matching pass.",
    ),
    (
        "engine_not_in_sync_only_total",
        "Observations and timers of users outside sync.only (the pilot group): no decision made.",
    ),
    (
        "engine_observation_lag_seconds",
        "Time from a status being observed to the engine deciding on it.",
    ),
    (
        "engine_reconcile_drift_total",
        "Disagreements found by reconciliation, by side.",
    ),
    (
        "engine_reconcile_last_writes",
        "Writes made by the last reconciliation.",
    ),
    (
        "engine_reconcile_runs_total",
        "Reconciliations run, by outcome.",
    ),
    (
        "engine_shadow_writes_total",
        "Writes not made because sync.mode = \"shadow\", by side (teams, contact_center).",
    ),
    (
        "engine_write_duration_seconds",
        "Duration of writes to Teams or the contact center.",
    ),
    (
        "engine_writes_total",
        "Writes to Teams or the contact center, by side and outcome.",
    ),
    (
        "graph_notifications_accepted_total",
        "Graph change notifications stored in the inbox.",
    ),
    (
        "graph_notifications_dropped_total",
        "Graph change notifications dropped, by reason.",
    ),
    (
        "graph_presence_poll_interval_seconds",
        "Time between two full presence polling rounds for the users in scope now (the budget's floor or graph.poll.interval_secs).",
    ),
    (
        "graph_presence_poll_round_calls",
        "getPresencesByUserId calls the last full presence polling round made.",
    ),
    (
        "graph_presence_poll_round_seconds",
        "Duration of the last full presence polling round.",
    ),
    (
        "graph_presence_poll_rounds_total",
        "Full presence polling rounds completed.",
    ),
    (
        "graph_presence_poll_users",
        "Users whose presence is polled (in the sync scope), as the poller last read them.",
    ),
    (
        "graph_presence_polls_total",
        "Graph presence polling calls (getPresencesByUserId), by outcome.",
    ),
    (
        "graph_presence_shards_uncovered",
        "Presence shards without a working subscription (polled instead).",
    ),
    (
        "graph_request_duration_seconds",
        "Duration of Microsoft Graph requests, by API family.",
    ),
    (
        "graph_requests_total",
        "Microsoft Graph requests by API family and status.",
    ),
    (
        "graph_retries_total",
        "Microsoft Graph requests retried, by API family and reason.",
    ),
    (
        "graph_subscription_lookups_total",
        "Subscription lookups made for incoming notifications, by result.",
    ),
    (
        "graph_subscription_operations_total",
        "Graph subscription creations, renewals and deletions, by outcome.",
    ),
    (
        "graph_sync_account_days_left",
        "Days before a sync account's sign-in lapses without a successful refresh (0: lapsed).",
    ),
    (
        "graph_sync_accounts_missing",
        "Sync accounts still needed to cover every presence shard with a subscription.",
    ),
    (
        "http_accept_errors_total",
        "Errors accepting inbound connections (e.g. too many open files).",
    ),
    (
        "http_connections_open",
        "Inbound HTTP connections open now.",
    ),
    (
        "http_connections_refused_total",
        "Inbound connections refused because max_connections were open.",
    ),
    (
        "http_request_duration_seconds",
        "Inbound HTTP request duration by route template and method.",
    ),
    (
        "http_requests_total",
        "Inbound HTTP requests by route template, method and status.",
    ),
    (
        "messaging_hops_total",
        "Teams chat ⇄ Open Messaging hops carried out or dropped, by what (inbound, outbound, receipt, not_a_message, refused_by_genesys, ...).",
    ),
    (
        "messaging_throttled_total",
        "Messaging hops put back after a 429, by side (graph, genesys).",
    ),
    (
        "messaging_loop_guard_total",
        "Teams messages of the support account itself not sent to Genesys, by how they were recognised (sender, own_message_id).",
    ),
    (
        "messaging_attachments_total",
        "Attachments of bridged messages, by outcome (rehosted, too_large, unavailable).",
    ),
    (
        "messaging_threads_total",
        "Open Messaging identities started for Teams chats (a new chat, or one silent beyond the thread window).",
    ),
    (
        "messaging_webhook_total",
        "Calls of the Genesys outbound webhook, by outcome (queued, duplicate, bad_signature).",
    ),
    (
        "messaging_notifications_total",
        "Teams chat-message notifications, by outcome (queued, not_ours, undecryptable, not_a_new_message, ...).",
    ),
];

/// The help text of a metric.
pub fn help(name: &str) -> Option<&'static str> {
    METRICS.iter().find(|(n, _)| *n == name).map(|(_, h)| *h)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every metric name recorded anywhere under `src/` (`.counter("…"`, `.gauge("…"`,
    /// `.histogram("…"`, also across a line break) has a help text.
    #[test]
    fn every_recorded_metric_is_described() {
        let mut missing = Vec::new();
        visit(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
            &mut |text| {
                for call in [".counter(", ".gauge(", ".histogram("] {
                    for (i, _) in text.match_indices(call) {
                        let rest = text[i + call.len()..].trim_start();
                        let Some(rest) = rest.strip_prefix('"') else {
                            continue;
                        };
                        let name = &rest[..rest.find('"').unwrap_or(0)];
                        let is_name = name.starts_with(|c: char| c.is_ascii_lowercase())
                            && name
                                .chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                        if is_name && super::help(name).is_none() {
                            missing.push(name.to_owned());
                        }
                    }
                }
            },
        );
        assert!(
            missing.is_empty(),
            "metrics without a help text: {missing:?}"
        );
    }

    fn visit(dir: &Path, f: &mut dyn FnMut(&str)) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, f);
            } else if path.extension().is_some_and(|e| e == "rs") {
                f(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
}
