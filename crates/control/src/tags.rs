//! Tags on ElastiCache resources: AddTagsToResource, ListTagsForResource,
//! RemoveTagsFromResource on ARNs (`arn:aws:elasticache:REGION:ACCOUNT:cluster:ID`,
//! `replicationgroup:ID`), and `Tags` on the Create actions. Tags are stored per resource
//! (`cluster:ID`, `replicationgroup:ID`) and go with it when it is deleted; tags given to a
//! replication group are also given to its member clusters, as ElastiCache does.

use crate::api::{err, internal, invalid, ApiError, Params};
use crate::xml::Xml;
use crate::App;

/// ElastiCache's limit of tags per resource.
pub const MAX_TAGS: usize = 50;
/// The account in the ARNs this control plane hands out.
pub const ACCOUNT: &str = "000000000000";

/// A resource a tag can be put on: its kind (`cluster`, `replicationgroup`) and id.
#[derive(Debug, PartialEq)]
pub struct Resource {
    pub kind: String,
    pub id: String,
}

impl Resource {
    /// The key tags are stored under.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind, self.id)
    }
}

/// Parse an ElastiCache ARN; InvalidARN when it is not one, the resource's not-found fault
/// when it names a resource of another region or account.
pub fn parse_arn(app: &App, arn: &str) -> Result<Resource, ApiError> {
    let bad = || err(400, "InvalidARN", format!("The ARN {} is not a valid ElastiCache ARN.", arn));
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    if parts.len() != 7 || parts[0] != "arn" || !parts[1].starts_with("aws") || parts[2] != "elasticache" {
        return Err(bad());
    }
    let (region, account, kind, id) = (parts[3], parts[4], parts[5], parts[6]);
    if id.is_empty() || account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let id = id.to_ascii_lowercase();
    let elsewhere = region != app.region || account != ACCOUNT;
    match kind {
        "cluster" => {
            if elsewhere || app.store.lock().unwrap().cluster(&id).map_err(internal)?.is_none() {
                return Err(err(404, "CacheClusterNotFound", format!("CacheCluster not found: {}", id)));
            }
        }
        "replicationgroup" => {
            if elsewhere || app.store.lock().unwrap().group(&id).map_err(internal)?.is_none() {
                return Err(err(404, "ReplicationGroupNotFoundFault", format!("Replication group {} not found.", id)));
            }
        }
        "snapshot" => return Err(err(404, "SnapshotNotFoundFault", format!("Snapshot {} not found.", id))),
        "parametergroup" => {
            return Err(err(404, "CacheParameterGroupNotFound", format!("CacheParameterGroup {} not found.", id)))
        }
        "subnetgroup" => {
            return Err(err(404, "CacheSubnetGroupNotFoundFault", format!("Cache subnet group {} not found.", id)))
        }
        "user" => return Err(err(404, "UserNotFound", format!("User {} not found.", id))),
        "usergroup" => return Err(err(404, "UserGroupNotFound", format!("User group {} not found.", id))),
        _ => return Err(bad()),
    }
    Ok(Resource { kind: kind.to_string(), id })
}

/// The `Tags.Tag.N.Key` / `Tags.Tag.N.Value` of a request, checked as ElastiCache checks them.
pub fn from_request(p: &Params) -> Result<Vec<(String, String)>, ApiError> {
    let mut by_index: std::collections::BTreeMap<u32, (Option<String>, String)> = Default::default();
    for (k, v) in &p.0 {
        let Some(rest) = k.strip_prefix("Tags.").and_then(|r| r.split_once('.').map(|(_, r)| r)) else { continue };
        let Some((idx, field)) = rest.split_once('.') else { continue };
        let Ok(idx) = idx.parse() else { continue };
        let e = by_index.entry(idx).or_default();
        match field {
            "Key" => e.0 = Some(v.clone()),
            "Value" => e.1 = v.clone(),
            _ => {}
        }
    }
    let mut tags: Vec<(String, String)> = Vec::new();
    for (_, (key, value)) in by_index {
        let key = key.filter(|k| !k.is_empty()).ok_or_else(|| invalid("A tag key must not be empty."))?;
        if key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(invalid("A tag key has at most 128 characters and a tag value at most 256."));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid(format!("Tag keys starting with aws: are reserved: {}", key)));
        }
        match tags.iter_mut().find(|(k, _)| *k == key) {
            Some(t) => t.1 = value,
            None => tags.push((key, value)),
        }
    }
    Ok(tags)
}

/// Merge `add` into a resource's tags (values replaced), keeping the 50-tag limit.
fn merged(app: &App, key: &str, add: &[(String, String)]) -> Result<Vec<(String, String)>, ApiError> {
    let mut tags = app.store.lock().unwrap().tags(key).map_err(internal)?;
    for (k, v) in add {
        match tags.iter_mut().find(|(t, _)| t == k) {
            Some(t) => t.1 = v.clone(),
            None => tags.push((k.clone(), v.clone())),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(err(
            400,
            "TagQuotaPerResourceExceeded",
            format!("The request cannot be processed because it would cause the resource to have more than the allowed number of tags ({}).", MAX_TAGS),
        ));
    }
    Ok(tags)
}

/// The resources a tag change on `r` reaches: itself and, for a replication group, its members.
fn reach(app: &App, r: &Resource) -> Result<Vec<String>, ApiError> {
    let mut keys = vec![r.key()];
    if r.kind == "replicationgroup" {
        if let Some(g) = app.store.lock().unwrap().group(&r.id).map_err(internal)? {
            keys.extend(g.members.iter().map(|(c, _)| format!("cluster:{}", c)));
        }
    }
    Ok(keys)
}

/// Tag a resource just created (the Create actions' `Tags`): checked before it is stored.
pub fn check_new(tags: &[(String, String)]) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(err(
            400,
            "TagQuotaPerResourceExceeded",
            format!("The request cannot be processed because it would cause the resource to have more than the allowed number of tags ({}).", MAX_TAGS),
        ));
    }
    Ok(())
}

/// Store a new resource's tags (and its members', for a replication group).
pub fn put_new(app: &App, kind: &str, id: &str, tags: &[(String, String)]) -> Result<(), ApiError> {
    if tags.is_empty() {
        return Ok(());
    }
    let r = Resource { kind: kind.into(), id: id.into() };
    for key in reach(app, &r)? {
        let t = merged(app, &key, tags)?;
        app.store.lock().unwrap().put_tags(&key, &t).map_err(internal)?;
    }
    Ok(())
}

fn tag_list(tags: &[(String, String)]) -> String {
    let mut x = Xml::default();
    x.open("TagList");
    for (k, v) in tags {
        x.open("Tag").leaf("Key", k).leaf("Value", v).close("Tag");
    }
    x.close("TagList");
    x.out
}

/// The actions of this module; None for other actions.
pub fn dispatch(app: &App, action: &str, p: &Params) -> Option<Result<String, ApiError>> {
    Some(match action {
        "AddTagsToResource" => add(app, p),
        "ListTagsForResource" => list(app, p),
        "RemoveTagsFromResource" => remove(app, p),
        _ => return None,
    })
}

fn add(app: &App, p: &Params) -> Result<String, ApiError> {
    let r = parse_arn(app, p.required("ResourceName")?)?;
    let add = from_request(p)?;
    if add.is_empty() {
        return Err(err(400, "MissingParameter", "The request must contain the parameter Tags"));
    }
    let keys = reach(app, &r)?;
    // Every reached resource within the limit, or nothing changes.
    let all: Vec<(String, Vec<(String, String)>)> =
        keys.iter().map(|k| merged(app, k, &add).map(|t| (k.clone(), t))).collect::<Result<_, _>>()?;
    let mut st = app.store.lock().unwrap();
    for (k, t) in &all {
        st.put_tags(k, t).map_err(internal)?;
    }
    Ok(tag_list(&all[0].1))
}

fn list(app: &App, p: &Params) -> Result<String, ApiError> {
    let r = parse_arn(app, p.required("ResourceName")?)?;
    let tags = app.store.lock().unwrap().tags(&r.key()).map_err(internal)?;
    Ok(tag_list(&tags))
}

fn remove(app: &App, p: &Params) -> Result<String, ApiError> {
    let r = parse_arn(app, p.required("ResourceName")?)?;
    let keys = p.list("TagKeys");
    if keys.is_empty() {
        return Err(err(400, "MissingParameter", "The request must contain the parameter TagKeys"));
    }
    let current = app.store.lock().unwrap().tags(&r.key()).map_err(internal)?;
    if let Some(missing) = keys.iter().find(|k| !current.iter().any(|(t, _)| t == *k)) {
        return Err(err(404, "TagNotFound", format!("The tag {} was not found on {}.", missing, r.id)));
    }
    let reached = reach(app, &r)?;
    let mut st = app.store.lock().unwrap();
    let mut left = Vec::new();
    for (i, k) in reached.iter().enumerate() {
        let mut t = st.tags(k).map_err(internal)?;
        t.retain(|(key, _)| !keys.contains(key));
        st.put_tags(k, &t).map_err(internal)?;
        if i == 0 {
            left = t;
        }
    }
    Ok(tag_list(&left))
}
