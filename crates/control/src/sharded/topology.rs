//! What the nodes say about the cluster (CLUSTER NODES) and the slot arithmetic of the control
//! plane: slot range strings as ElastiCache writes them (`0-5460,5462`), the even distribution
//! over N shards, and the moves that turn one distribution into another.

use std::collections::BTreeMap;

pub const SLOTS: usize = 16384;

/// One line of CLUSTER NODES.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterNode {
    pub id: String,
    pub port: u16,
    pub myself: bool,
    pub master: bool,
    /// `fail` (not `fail?`): the cluster agreed the node is down.
    pub failed: bool,
    /// In a handshake or without an address: not a member yet.
    pub joining: bool,
    pub master_id: Option<String>,
    pub slots: Vec<u16>,
    /// `[slot->-id]` (only on the node's own line).
    pub migrating: Vec<(u16, String)>,
    /// `[slot-<-id]` (only on the node's own line).
    pub importing: Vec<(u16, String)>,
}

pub fn parse_nodes(text: &str) -> Vec<ClusterNode> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let addr = f[1].split(['@', ',']).next().unwrap_or("");
        let port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let flags: Vec<&str> = f[2].split(',').collect();
        let mut n = ClusterNode {
            id: f[0].to_string(),
            port,
            myself: flags.contains(&"myself"),
            master: flags.contains(&"master"),
            failed: flags.contains(&"fail"),
            joining: flags.contains(&"handshake") || flags.contains(&"noaddr") || port == 0,
            master_id: (f[3] != "-").then(|| f[3].to_string()),
            ..Default::default()
        };
        for s in &f[8..] {
            if let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                if let Some((slot, id)) = inner.split_once("->-") {
                    if let Ok(slot) = slot.parse() {
                        n.migrating.push((slot, id.to_string()));
                    }
                } else if let Some((slot, id)) = inner.split_once("-<-") {
                    if let Ok(slot) = slot.parse() {
                        n.importing.push((slot, id.to_string()));
                    }
                }
                continue;
            }
            let (a, b) = s.split_once('-').unwrap_or((s, s));
            if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                n.slots.extend(a..=b.min(SLOTS as u16 - 1));
            }
        }
        out.push(n);
    }
    out
}

/// `0-5460,5462` from sorted or unsorted slots.
pub fn format_ranges(slots: &[u16]) -> String {
    let mut s: Vec<u16> = slots.to_vec();
    s.sort_unstable();
    s.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let start = s[i];
        while i + 1 < s.len() && s[i + 1] == s[i] + 1 {
            i += 1;
        }
        parts.push(if s[i] == start { start.to_string() } else { format!("{}-{}", start, s[i]) });
        i += 1;
    }
    parts.join(",")
}

/// The slots of `0-3999,4001` (ElastiCache's `Slots`); an error text for a bad string.
pub fn parse_ranges(text: &str) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = match (a.trim().parse(), b.trim().parse()) {
            (Ok(a), Ok(b)) => (a, b),
            _ => return Err(format!("Invalid slot range {}", part)),
        };
        if a > b || b >= SLOTS {
            return Err(format!("Invalid slot range {}: slots are 0-16383, start <= end", part));
        }
        out.extend((a..=b).map(|s| s as u16));
    }
    if out.is_empty() {
        return Err(format!("Invalid slot range {:?}", text));
    }
    Ok(out)
}

/// How many slots each of `n` shards holds when evenly spread (the first ones take the rest).
pub fn even_counts(n: usize) -> Vec<usize> {
    (0..n).map(|i| SLOTS / n + usize::from(i < SLOTS % n)).collect()
}

/// Contiguous even ranges over `n` shards (`0-5461`, `5462-10922`, `10923-16383` for 3).
pub fn even_ranges(n: usize) -> Vec<Vec<u16>> {
    let mut start = 0usize;
    even_counts(n)
        .into_iter()
        .map(|c| {
            let r = (start..start + c).map(|s| s as u16).collect();
            start += c;
            r
        })
        .collect()
}

/// One slot to move from one shard to another.
#[derive(Clone, Debug, PartialEq)]
pub struct Move {
    pub slot: u16,
    pub from: String,
    pub to: String,
}

/// The moves that take `owned` (shard -> slots) to an even spread over `targets` (in order;
/// the first shards take the remainder). Shards in `owned` but not in `targets` give all their
/// slots away. Each shard keeps as many of its own slots as it may (its lowest ones), so only
/// the surplus moves; receivers get contiguous runs where they can.
pub fn plan_moves(owned: &BTreeMap<String, Vec<u16>>, targets: &[String]) -> Vec<Move> {
    let counts = even_counts(targets.len().max(1));
    let goal: BTreeMap<&str, usize> = targets.iter().map(|t| t.as_str()).zip(counts).collect();
    // The surplus of every shard, highest slots first.
    let mut surplus: Vec<(String, u16)> = Vec::new();
    for (shard, slots) in owned {
        let keep = goal.get(shard.as_str()).copied().unwrap_or(0);
        let mut s = slots.clone();
        s.sort_unstable();
        for slot in s.into_iter().skip(keep) {
            surplus.push((shard.clone(), slot));
        }
    }
    surplus.sort_by_key(|(_, slot)| *slot);
    let mut moves = Vec::new();
    let mut it = surplus.into_iter();
    for t in targets {
        let have = owned.get(t).map_or(0, |s| s.len());
        let want = goal[t.as_str()];
        for _ in have..want {
            let Some((from, slot)) = it.next() else { return moves };
            moves.push(Move { slot, from, to: t.clone() });
        }
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_nodes() {
        let text =
            "e7d1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460 6000 [5461->-f00d] [7000-<-beef]\n\
                    f00d 127.0.0.1:7002@17002,host master,fail - 0 0 2 disconnected 5462-10922\n\
                    beef 127.0.0.1:7003@17003 slave e7d1 0 0 1 connected\n\
                    cafe :0@0 handshake - 0 0 0 disconnected\n";
        let n = parse_nodes(text);
        assert_eq!(n.len(), 4);
        assert!(n[0].myself && n[0].master && !n[0].failed);
        assert_eq!(n[0].port, 7001);
        assert_eq!(n[0].slots.len(), 5462);
        assert_eq!(n[0].migrating, vec![(5461, "f00d".to_string())]);
        assert_eq!(n[0].importing, vec![(7000, "beef".to_string())]);
        assert!(n[1].failed && n[1].port == 7002);
        assert_eq!(n[2].master_id.as_deref(), Some("e7d1"));
        assert!(n[3].joining);
    }

    #[test]
    fn ranges_round_trip() {
        assert_eq!(format_ranges(&parse_ranges("0-3,5,7-8").unwrap()), "0-3,5,7-8");
        assert!(parse_ranges("5-1").is_err());
        assert!(parse_ranges("0-16384").is_err());
        assert!(parse_ranges("x").is_err());
        let r = even_ranges(3);
        assert_eq!(r.iter().map(|s| format_ranges(s)).collect::<Vec<_>>(), ["0-5461", "5462-10922", "10923-16383"]);
    }

    fn spread(owned: &BTreeMap<String, Vec<u16>>, moves: &[Move]) -> BTreeMap<String, usize> {
        let mut o = owned.clone();
        for m in moves {
            o.get_mut(&m.from).unwrap().retain(|s| *s != m.slot);
            o.entry(m.to.clone()).or_default().push(m.slot);
        }
        o.into_iter().map(|(k, v)| (k, v.len())).collect()
    }

    #[test]
    fn scale_out_and_in_moves_only_the_surplus() {
        let names = |n: usize| (1..=n).map(|i| format!("{:04}", i)).collect::<Vec<_>>();
        let owned: BTreeMap<String, Vec<u16>> = names(3).into_iter().zip(even_ranges(3)).collect();
        let out = plan_moves(&owned, &names(5));
        assert_eq!(out.len(), 3277 + 3276);
        let after = spread(&owned, &out);
        let counts: Vec<usize> = after.values().copied().collect();
        assert_eq!(counts, even_counts(5));
        // Scale in: 0002 and 0004 go away.
        let mut owned5 = owned.clone();
        for m in &out {
            owned5.get_mut(&m.from).unwrap().retain(|s| *s != m.slot);
            owned5.entry(m.to.clone()).or_default().push(m.slot);
        }
        let keep = vec!["0001".to_string(), "0003".to_string()];
        let moves = plan_moves(&owned5, &keep);
        let after = spread(&owned5, &moves);
        assert_eq!(after["0002"], 0);
        assert_eq!(after["0004"], 0);
        assert_eq!((after["0001"], after["0003"]), (8192, 8192));
        assert!(moves.iter().all(|m| keep.contains(&m.to) && !keep.contains(&m.from)));
        // Already even: nothing moves.
        assert!(plan_moves(&owned, &names(3)).is_empty());
    }
}
