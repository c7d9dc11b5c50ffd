//! The cluster-mode parts of `ferrocache cluster`: `create NAME --shards N [--replicas R]`,
//! `scale NAME --shards N [--remove ID,...]` with a progress bar while slots move, and the
//! shard table of `describe`.

use crate::cli::{table, CallError, Client, Element};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// CreateReplicationGroup's parameters for `create NAME --shards N [--replicas R]`.
pub fn create_params(name: &str, shards: u32, replicas: Option<u32>) -> Vec<(&'static str, String)> {
    vec![
        ("ReplicationGroupId", name.to_string()),
        ("ReplicationGroupDescription", format!("{} (ferrocache cluster create)", name)),
        ("Engine", "redis".into()),
        ("NumNodeGroups", shards.to_string()),
        ("ReplicasPerNodeGroup", replicas.unwrap_or(0).to_string()),
        ("CacheParameterGroupName", "default.redis7.cluster.on".into()),
    ]
}

/// The node group ids of a group, in order.
fn shard_ids(g: &Element) -> Vec<String> {
    g.list("NodeGroups").iter().map(|ng| ng.get("NodeGroupId")).collect()
}

/// `scale NAME --shards N [--remove IDS]`: ModifyReplicationGroupShardConfiguration, then a
/// progress bar until the group is available again (unless `wait` is false). Scaling in without
/// `--remove` removes the last shards.
pub fn scale(
    client: &Client,
    name: &str,
    shards: u32,
    remove: &[String],
    wait: bool,
    timeout: Duration,
) -> Result<Element, CallError> {
    let r = client.call("DescribeReplicationGroups", &[("ReplicationGroupId", name.to_string())])?;
    let current = r.list("ReplicationGroups").first().map(|g| shard_ids(g)).unwrap_or_default();
    let mut p: Vec<(String, String)> = vec![
        ("ReplicationGroupId".into(), name.to_string()),
        ("NodeGroupCount".into(), shards.to_string()),
        ("ApplyImmediately".into(), "true".into()),
    ];
    if (shards as usize) < current.len() {
        let victims: Vec<String> =
            if remove.is_empty() { current[shards as usize..].to_vec() } else { remove.to_vec() };
        for (i, v) in victims.iter().enumerate() {
            p.push((format!("NodeGroupsToRemove.NodeGroupToRemove.{}", i + 1), v.clone()));
        }
    }
    let params: Vec<(&str, String)> = p.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let started = client.call("ModifyReplicationGroupShardConfiguration", &params)?;
    if !wait {
        return Ok(started);
    }
    progress(client, name, timeout)
}

/// Poll the group until it is available, drawing the resharding progress on stderr: a bar on a
/// terminal (indicatif), a line per 10% otherwise.
fn progress(client: &Client, name: &str, timeout: Duration) -> Result<Element, CallError> {
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let bar = indicatif::ProgressBar::new(10_000);
    if tty {
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {percent:>3}% ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(format!("resharding {}", name));
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut last_decile = -1;
    loop {
        let r = client.call("DescribeReplicationGroups", &[("ReplicationGroupId", name.to_string())])?;
        let Some(g) = r.list("ReplicationGroups").first().map(|g| (*g).clone()) else {
            return Err(CallError::Transport(format!("{} disappeared", name)));
        };
        let pct: f64 =
            g.get("PendingModifiedValues/Resharding/SlotMigration/ProgressPercentage").parse().unwrap_or(0.0);
        let status = g.get("Status");
        let pct = if status == "available" { 100.0 } else { pct };
        bar.set_position((pct * 100.0) as u64);
        if !tty && (pct / 10.0).floor() as i32 > last_decile {
            last_decile = (pct / 10.0).floor() as i32;
            eprintln!("resharding {}: {:.0}% ({}s)", name, pct, start.elapsed().as_secs());
            let _ = std::io::stderr().flush();
        }
        if status == "available" {
            bar.finish();
            return Ok(g);
        }
        if start.elapsed() > timeout {
            bar.abandon();
            return Err(CallError::Transport(format!(
                "timed out after {}s waiting for {} (status {}, {:.1}% of the slots moved)",
                timeout.as_secs(),
                name,
                status,
                pct
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The shards of a cluster-mode group for `describe`: each with its slots and members.
pub fn shards_detail(g: &Element, out: &mut String) {
    let pct = g.get("PendingModifiedValues/Resharding/SlotMigration/ProgressPercentage");
    if !pct.is_empty() {
        let _ = writeln!(out, "{:<24}{}% of the slots moved", "Resharding:", pct);
    }
    let rows: Vec<Vec<String>> = g
        .list("NodeGroups")
        .iter()
        .flat_map(|ng| {
            ng.list("NodeGroupMembers")
                .into_iter()
                .enumerate()
                .map(|(i, m)| {
                    let first = i == 0;
                    vec![
                        if first { ng.get("NodeGroupId") } else { String::new() },
                        if first { ng.get("Status") } else { String::new() },
                        if first { ng.get("Slots") } else { String::new() },
                        m.get("CacheClusterId"),
                        m.get("PreferredAvailabilityZone"),
                    ]
                })
                .collect::<Vec<_>>()
        })
        .collect();
    out.push('\n');
    out.push_str(&table(&["SHARD", "STATUS", "SLOTS", "MEMBER", "ZONE"], &rows));
}
