//! ElastiCache's API over the AWS Query protocol: `Action=...&Version=2015-02-02`, form-encoded
//! in a POST body or in the query string; XML responses and error documents in ElastiCache's
//! shapes.

use crate::state::{Cluster, Node};
use crate::xml::{iso8601, parse_time, Xml, NS};
use crate::{now_ms, App};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::collections::HashMap;
use std::sync::Arc;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(prometheus))
        .route("/metrics/json", axum::routing::get(metrics_json))
        .fallback(handle)
        .with_state(app)
}

/// `GET /metrics`: Prometheus text exposition format 0.0.4 (metrics.rs).
async fn prometheus(State(app): State<Arc<App>>) -> Response {
    let body = app.metrics.prometheus();
    (StatusCode::OK, [("content-type", "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// `GET /metrics/json?CacheClusterId=..&MetricName=..&Period=..&StartTime=..&EndTime=..`:
/// CloudWatch GetMetricStatistics's output shape, as JSON.
async fn metrics_json(State(app): State<Arc<App>>, uri: axum::http::Uri) -> Response {
    let params: HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    match crate::metrics::json_response(&app, &params) {
        Ok(body) => (StatusCode::OK, [("content-type", "application/json")], body).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            format!(
                "{{\"Error\":{{\"Code\":\"InvalidParameterValue\",\"Message\":\"{}\"}}}}",
                e.replace('\\', "\\\\").replace('"', "\\\"")
            ),
        )
            .into_response(),
    }
}

pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    sender: bool,
}

impl ApiError {
    /// The error's message (the document's `Message`).
    pub fn message(&self) -> &str {
        &self.message
    }
}

pub(crate) fn err(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError { status: StatusCode::from_u16(status).unwrap(), code, message: message.into(), sender: status < 500 }
}
pub(crate) fn invalid(m: impl Into<String>) -> ApiError {
    err(400, "InvalidParameterValue", m)
}
pub(crate) fn combination(m: impl Into<String>) -> ApiError {
    err(400, "InvalidParameterCombination", m)
}
fn not_found(id: &str) -> ApiError {
    err(404, "CacheClusterNotFound", format!("CacheCluster not found: {}", id))
}
pub(crate) fn internal(m: String) -> ApiError {
    err(500, "InternalFailure", m)
}

fn request_id() -> String {
    let r: u128 = rand::random();
    let h = format!("{:032x}", r);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "text/xml")], body).into_response()
}

fn error_response(e: ApiError) -> Response {
    let mut x = Xml::default();
    x.out.push_str(&format!("<ErrorResponse xmlns=\"{}\">", NS));
    x.open("Error")
        .leaf("Type", if e.sender { "Sender" } else { "Receiver" })
        .leaf("Code", e.code)
        .leaf("Message", &e.message)
        .close("Error");
    x.leaf("RequestId", &request_id());
    x.close("ErrorResponse");
    xml_response(e.status, x.out)
}

pub struct Params(pub(crate) HashMap<String, String>);

impl Params {
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(|s| s.as_str()).filter(|s| !s.is_empty())
    }
    pub(crate) fn required(&self, k: &str) -> Result<&str, ApiError> {
        self.get(k).ok_or_else(|| err(400, "MissingParameter", format!("The request must contain the parameter {}", k)))
    }
    pub(crate) fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| invalid(format!("Invalid value for parameter {}: {}", k, v))),
        }
    }
    pub(crate) fn bool(&self, k: &str) -> Result<Option<bool>, ApiError> {
        match self.get(k).map(|v| v.to_ascii_lowercase()) {
            None => Ok(None),
            Some(v) if v == "true" => Ok(Some(true)),
            Some(v) if v == "false" => Ok(Some(false)),
            Some(v) => Err(invalid(format!("Invalid boolean value for parameter {}: {}", k, v))),
        }
    }
    /// A Query-protocol list: `Name.member.1`, `Name.member.2`, ... (or `Name.<Member>.N`).
    pub(crate) fn list(&self, k: &str) -> Vec<String> {
        let mut items: Vec<(u32, String)> = self
            .0
            .iter()
            .filter_map(|(key, v)| {
                let rest = key.strip_prefix(k)?.strip_prefix('.')?;
                let idx = rest.rsplit('.').next()?.parse().ok()?;
                Some((idx, v.clone()))
            })
            .collect();
        items.sort();
        items.into_iter().map(|(_, v)| v).collect()
    }
}

/// The largest request body served (the largest real request is a few kilobytes).
pub const MAX_BODY: usize = 1 << 20;

/// The API version this control plane serves.
pub const VERSION: &str = "2015-02-02";

/// Read the whole body (Content-Length or chunked) within the read timeout and the size limit;
/// otherwise an error document, and the connection is closed.
async fn read_body(app: &App, body: Body) -> Result<Bytes, Response> {
    let closing = |e: ApiError| {
        let mut r = error_response(e);
        r.headers_mut().insert("connection", axum::http::HeaderValue::from_static("close"));
        r
    };
    match tokio::time::timeout(app.read_timeout, axum::body::to_bytes(body, MAX_BODY)).await {
        Err(_) => Err(closing(err(
            400,
            "RequestTimeout",
            "Your socket connection to the server was not read from or written to within the timeout period.",
        ))),
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            // http_body_util's LengthLimitError ("length limit exceeded"), somewhere in the chain.
            let mut too_large = false;
            let mut cur: Option<&dyn std::error::Error> = Some(&e);
            while let Some(x) = cur {
                too_large |= x.to_string().contains("length limit exceeded");
                cur = x.source();
            }
            Err(closing(if too_large {
                err(413, "RequestEntityTooLarge", format!("Request body is larger than {} bytes.", MAX_BODY))
            } else {
                err(400, "MalformedQueryString", format!("The request body could not be read: {}", e))
            }))
        }
    }
}

async fn handle(State(app): State<Arc<App>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let q = uri.query().map(|s| s.to_string());
    let body = match read_body(&app, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(keys) = &app.keys {
        let req = crate::sigv4::Request {
            method: method.as_str(),
            path: uri.path(),
            query: q.as_deref().unwrap_or(""),
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
            body: &body,
        };
        if let Err((status, code, message)) = crate::sigv4::verify(keys, &req) {
            return error_response(err(status, code, message));
        }
    }
    let mut map = HashMap::new();
    if let Some(q) = &q {
        map.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
    }
    map.extend(form_urlencoded::parse(&body).into_owned());
    let params = Params(map);
    let Some(action) = params.get("Action").map(|s| s.to_string()) else {
        return error_response(err(400, "MissingAction", "Missing Action"));
    };
    // As AWS Query services answer a missing or another API version.
    match params.get("Version") {
        Some(VERSION) => {}
        v => {
            return error_response(err(
                400,
                "InvalidAction",
                format!("Could not find operation {} for version {}", action, v.unwrap_or("NO_VERSION_SPECIFIED")),
            ))
        }
    }
    let app2 = app.clone();
    let result = tokio::task::spawn_blocking(move || dispatch(&app2, &action, &params).map(|r| (action, r))).await;
    match result {
        Ok(Ok((action, inner))) => {
            let mut x = Xml::default();
            x.out.push_str(&format!("<{}Response xmlns=\"{}\">", action, NS));
            x.out.push_str(&inner);
            x.open("ResponseMetadata").leaf("RequestId", &request_id()).close("ResponseMetadata");
            x.close(&format!("{}Response", action));
            xml_response(StatusCode::OK, x.out)
        }
        Ok(Err(e)) => error_response(e),
        Err(e) => error_response(internal(e.to_string())),
    }
}

fn dispatch(app: &Arc<App>, action: &str, p: &Params) -> Result<String, ApiError> {
    crate::params::check(action, p)?;
    let inner = match action {
        "CreateCacheCluster" => create_cache_cluster(app, p)?,
        "DescribeCacheClusters" => describe_cache_clusters(app, p)?,
        "DeleteCacheCluster" => delete_cache_cluster(app, p)?,
        "RebootCacheCluster" => reboot_cache_cluster(app, p)?,
        "ModifyCacheCluster" => modify_cache_cluster(app, p)?,
        "DescribeEvents" => describe_events(app, p)?,
        other => {
            match crate::replication_group::dispatch(app, other, p).or_else(|| crate::tags::dispatch(app, other, p)) {
                Some(r) => r?,
                None => {
                    return Err(err(
                        400,
                        "InvalidAction",
                        format!("The action {} is not valid for this web service.", other),
                    ))
                }
            }
        }
    };
    let mut x = Xml::default();
    x.open(&format!("{}Result", action));
    x.out.push_str(&inner);
    x.close(&format!("{}Result", action));
    Ok(x.out)
}

/// ElastiCache's identifier rules: 1-40 characters (50 for Memcached/Redis clusters created
/// here), letters, digits and hyphens, starting with a letter, no trailing or double hyphen.
pub(crate) fn validate_id(id: &str) -> Result<String, ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 50
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.ends_with('-')
        && !id.contains("--");
    if !ok {
        return Err(invalid(
            "Cache cluster identifier must begin with a letter; must contain only ASCII letters, digits, and hyphens; and must not end with a hyphen or contain two consecutive hyphens.",
        ));
    }
    Ok(id.to_ascii_lowercase())
}

pub use crate::params::validate_node_type;

fn write_cluster(app: &App, x: &mut Xml, c: &Cluster, nodes: &[Node], show_nodes: bool) {
    let addr = app.provider.address(&App::spec(
        c,
        &Node {
            cluster_id: c.id.clone(),
            node_id: String::new(),
            port: 0,
            mc_port: 0,
            pid: 0,
            status: String::new(),
            created_ms: 0,
        },
    ));
    let live: Vec<&Node> = nodes.iter().filter(|n| n.status != "deleting").collect();
    x.open("CacheCluster");
    x.leaf("CacheClusterId", &c.id);
    if c.engine == "memcached" {
        // The stable endpoint served by the control plane (mc_config.rs), once assigned.
        if let Ok(Some(d)) = app.store.lock().unwrap().discovery(&c.id) {
            x.open("ConfigurationEndpoint")
                .leaf("Address", &addr)
                .leaf("Port", &d.port.to_string())
                .close("ConfigurationEndpoint");
        }
        x.leaf("ClientDownloadLandingPage", "https://console.aws.amazon.com/elasticache/home#client-download:");
    }
    x.leaf("CacheNodeType", &c.node_type);
    x.leaf("Engine", &c.engine);
    x.leaf("EngineVersion", &c.engine_version);
    x.leaf("CacheClusterStatus", &c.status);
    x.leaf("NumCacheNodes", &live.len().to_string());
    x.leaf("PreferredAvailabilityZone", &c.az);
    x.leaf("CacheClusterCreateTime", &iso8601(c.created_ms));
    x.leaf("PreferredMaintenanceWindow", "sun:05:00-sun:06:00");
    x.empty("PendingModifiedValues");
    x.empty("CacheSecurityGroups");
    let family = match (c.engine.as_str(), c.cluster_mode) {
        ("memcached", _) => "default.memcached1.6",
        (_, true) => "default.redis7.cluster.on",
        _ => "default.redis7",
    };
    x.open("CacheParameterGroup")
        .leaf("CacheParameterGroupName", family)
        .leaf("ParameterApplyStatus", "in-sync")
        .empty("CacheNodeIdsToReboot")
        .close("CacheParameterGroup");
    x.leaf("CacheSubnetGroupName", "default");
    if show_nodes {
        x.open("CacheNodes");
        for n in &live {
            let port = if c.engine == "memcached" { n.mc_port } else { n.port };
            x.open("CacheNode")
                .leaf("CacheNodeId", &n.node_id)
                .leaf("CacheNodeStatus", &n.status)
                .leaf("CacheNodeCreateTime", &iso8601(n.created_ms));
            if n.status != "creating" {
                x.open("Endpoint").leaf("Address", &addr).leaf("Port", &port.to_string()).close("Endpoint");
            }
            x.leaf("ParameterGroupStatus", "in-sync").leaf("CustomerAvailabilityZone", &c.az).close("CacheNode");
        }
        x.close("CacheNodes");
    }
    x.leaf("AutoMinorVersionUpgrade", "true");
    x.empty("SecurityGroups");
    if let Some(g) = crate::failover::group_of(app, &c.id) {
        x.leaf("ReplicationGroupId", &g);
    }
    x.leaf("AuthTokenEnabled", "false");
    x.leaf("TransitEncryptionEnabled", "false");
    x.leaf("AtRestEncryptionEnabled", "false");
    x.leaf("ARN", &format!("arn:aws:elasticache:{}:000000000000:cluster:{}", app.region, c.id));
    x.leaf("ReplicationGroupLogDeliveryEnabled", "false");
    x.empty("LogDeliveryConfigurations");
    x.leaf("NetworkType", "ipv4");
    x.leaf("IpDiscovery", "ipv4");
    x.close("CacheCluster");
}

fn cluster_xml(app: &App, id: &str, show_nodes: bool) -> Result<String, ApiError> {
    let st = app.store.lock().unwrap();
    let c = st.cluster(id).map_err(internal)?.ok_or_else(|| not_found(id))?;
    let nodes = st.nodes(id).map_err(internal)?;
    drop(st);
    let mut x = Xml::default();
    write_cluster(app, &mut x, &c, &nodes, show_nodes);
    Ok(x.out)
}

pub(crate) fn new_node(app: &App, c: &mut Cluster) -> Result<Node, ApiError> {
    let (port, mc_port) = app.provider.allocate_ports(&c.engine).map_err(internal)?;
    let n = Node {
        cluster_id: c.id.clone(),
        node_id: format!("{:04}", c.next_node),
        port,
        mc_port,
        pid: 0,
        status: "creating".into(),
        created_ms: now_ms(),
    };
    c.next_node += 1;
    Ok(n)
}

fn create_cache_cluster(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let id = validate_id(p.required("CacheClusterId")?)?;
    let tags = crate::tags::from_request(p)?;
    crate::tags::check_new(&tags)?;
    let engine = p.required("Engine")?.to_ascii_lowercase();
    if engine != "redis" && engine != "memcached" {
        return Err(invalid(format!("Invalid engine {}. Valid engines: memcached, redis", engine)));
    }
    let num = p.int("NumCacheNodes")?.unwrap_or(1);
    if engine == "redis" && num != 1 {
        return Err(invalid("Cannot create a Redis cluster with a NumCacheNodes parameter greater than 1."));
    }
    if !(1..=40).contains(&num) {
        return Err(invalid(format!("The number of cache nodes must be between 1 and 40; got {}", num)));
    }
    let version = crate::params::engine_version(&engine, p.get("EngineVersion"))?;
    let node_type = crate::params::node_type(p)?;
    if let Some(m) = p.get("AZMode").filter(|m| *m != "single-az" && *m != "cross-az") {
        return Err(invalid(format!("Invalid value for parameter AZMode: {}. Valid values: single-az, cross-az", m)));
    }
    let mut az = p.get("PreferredAvailabilityZone").map(|s| s.to_string());
    if let Some(a) = &az {
        crate::params::validate_az("PreferredAvailabilityZone", a, &app.region)?;
    }
    let azs = p.list("PreferredAvailabilityZones");
    for a in &azs {
        crate::params::validate_az("PreferredAvailabilityZones", a, &app.region)?;
    }
    if !azs.is_empty() {
        if az.is_some() {
            return Err(combination(
                "Only one of PreferredAvailabilityZone and PreferredAvailabilityZones can be given.",
            ));
        }
        if azs.len() as i64 != num {
            return Err(invalid(format!(
                "The number of PreferredAvailabilityZones ({}) must equal NumCacheNodes ({}).",
                azs.len(),
                num
            )));
        }
        if azs.iter().any(|a| *a != azs[0]) {
            return Err(combination(
                "PreferredAvailabilityZones with different zones (cross-az placement) is not supported by this control plane yet.",
            ));
        }
        az = Some(azs[0].clone());
    }
    if p.get("AZMode") == Some("cross-az") {
        return Err(combination(
            "AZMode=cross-az is not supported by this control plane yet: every node of a cluster is in one availability zone.",
        ));
    }
    if let Some(pg) = p.get("CacheParameterGroupName") {
        let family = if engine == "memcached" { "default.memcached1.6" } else { "default.redis7" };
        if pg != family {
            return Err(combination(format!("CacheParameterGroupName {} does not belong to engine {}.", pg, engine)));
        }
    }
    let az = az.unwrap_or_else(|| format!("{}a", app.region));
    let mut c = Cluster {
        id: id.clone(),
        engine,
        engine_version: version,
        node_type,
        status: "creating".into(),
        az,
        created_ms: now_ms(),
        next_node: 1,
        cluster_mode: false,
    };
    let mut nodes = Vec::new();
    for _ in 0..num {
        nodes.push(new_node(app, &mut c)?);
    }
    {
        let mut st = app.store.lock().unwrap();
        if !st.insert_cluster(&c).map_err(internal)? {
            return Err(err(400, "CacheClusterAlreadyExists", "Cache cluster already exists"));
        }
        for n in &nodes {
            st.upsert_node(n).map_err(internal)?;
        }
    }
    app.try_begin(&id);
    crate::tags::put_new(app, "cluster", &id, &tags)?;
    let out = cluster_xml(app, &id, false)?;
    let id2 = id.clone();
    app.spawn_op(move |a| a.op_converge(&id2, Some("Cache cluster created")));
    Ok(out)
}

fn describe_cache_clusters(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let show = p.bool("ShowCacheNodeInfo")?.unwrap_or(false);
    let standalone_only = p.bool("ShowCacheClustersNotInReplicationGroups")?.unwrap_or(false);
    let max = p.int("MaxRecords")?.unwrap_or(100);
    if !(20..=100).contains(&max) {
        return Err(invalid("The parameter MaxRecords must be between 20 and 100."));
    }
    let st = app.store.lock().unwrap();
    let clusters = match p.get("CacheClusterId") {
        Some(id) => {
            let id = id.to_ascii_lowercase();
            vec![st.cluster(&id).map_err(internal)?.ok_or_else(|| not_found(&id))?]
        }
        None => st.clusters().map_err(internal)?,
    };
    drop(st);
    let clusters: Vec<Cluster> =
        clusters.into_iter().filter(|c| !standalone_only || crate::failover::group_of(app, &c.id).is_none()).collect();
    let st = app.store.lock().unwrap();
    let start = match p.get("Marker") {
        Some(m) => clusters.iter().position(|c| c.id.as_str() >= m).unwrap_or(clusters.len()),
        None => 0,
    };
    let mut with_nodes = Vec::new();
    for c in clusters.iter().skip(start).take(max as usize) {
        with_nodes.push((c.clone(), st.nodes(&c.id).map_err(internal)?));
    }
    drop(st);
    let mut x = Xml::default();
    if let Some(next) = clusters.get(start + max as usize) {
        x.leaf("Marker", &next.id);
    }
    x.open("CacheClusters");
    for (c, nodes) in &with_nodes {
        write_cluster(app, &mut x, c, nodes, show);
    }
    x.close("CacheClusters");
    Ok(x.out)
}

/// Load a cluster that must be `available` for `op`.
fn available(app: &App, id: &str) -> Result<(Cluster, Vec<Node>), ApiError> {
    let st = app.store.lock().unwrap();
    let c = st.cluster(id).map_err(internal)?.ok_or_else(|| not_found(id))?;
    if c.status != "available" {
        return Err(err(400, "InvalidCacheClusterState", format!("Cache cluster {} is not in available state.", id)));
    }
    let nodes = st.nodes(id).map_err(internal)?;
    drop(st);
    // Member clusters of replication groups change through their group's actions.
    if let Some(g) = crate::failover::group_of(app, id) {
        return Err(err(
            400,
            "InvalidCacheClusterState",
            format!(
                "Cache cluster {} is a member of replication group {}; use the replication group's actions.",
                id, g
            ),
        ));
    }
    Ok((c, nodes))
}

/// Claim the cluster for an operation (another one may have started since the state check).
/// The health loop holds the claim of an `available` cluster for a moment while it probes the
/// nodes: wait for it (up to 3 s) rather than refuse, then check the state again.
fn begin(app: &App, id: &str) -> Result<(), ApiError> {
    let refused = || err(400, "InvalidCacheClusterState", format!("Cache cluster {} is not in available state.", id));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !app.try_begin(id) {
        if std::time::Instant::now() > deadline {
            return Err(refused());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let still = app.store.lock().unwrap().cluster(id).ok().flatten().is_some_and(|c| c.status == "available");
    if !still {
        app.end(id);
        return Err(refused());
    }
    Ok(())
}

fn set_status(app: &App, c: &mut Cluster, status: &str) -> Result<(), ApiError> {
    c.status = status.into();
    app.store.lock().unwrap().update_cluster(c).map_err(internal)
}

fn delete_cache_cluster(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let id = p.required("CacheClusterId")?.to_ascii_lowercase();
    let (mut c, _) = available(app, &id)?;
    begin(app, &id)?;
    set_status(app, &mut c, "deleting")?;
    let out = cluster_xml(app, &id, false)?;
    let id2 = id.clone();
    app.spawn_op(move |a| a.op_delete(&id2));
    Ok(out)
}

fn reboot_cache_cluster(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let id = p.required("CacheClusterId")?.to_ascii_lowercase();
    let ids = p.list("CacheNodeIdsToReboot");
    if ids.is_empty() {
        return Err(err(400, "MissingParameter", "The request must contain the parameter CacheNodeIdsToReboot"));
    }
    let (mut c, nodes) = available(app, &id)?;
    for n in &ids {
        if !nodes.iter().any(|x| &x.node_id == n) {
            return Err(invalid(format!("Cache node {} not found in cache cluster {}", n, id)));
        }
    }
    begin(app, &id)?;
    set_status(app, &mut c, "rebooting cache cluster nodes")?;
    let out = cluster_xml(app, &id, false)?;
    let id2 = id.clone();
    app.spawn_op(move |a| a.op_reboot(&id2, &ids));
    Ok(out)
}

fn modify_cache_cluster(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let id = p.required("CacheClusterId")?.to_ascii_lowercase();
    let num = p.int("NumCacheNodes")?;
    let remove = p.list("CacheNodeIdsToRemove");
    let (mut c, nodes) = available(app, &id)?;
    let current = nodes.len() as i64;
    // EngineVersion: only the version the nodes run exists (so it never changes).
    crate::params::engine_version(&c.engine, p.get("EngineVersion"))?;
    // CacheNodeType: recorded and reported (nodes are local processes of any size).
    let new_type = match p.get("CacheNodeType") {
        Some(t) => {
            crate::params::validate_node_type(t)?;
            Some(t.to_string()).filter(|t| *t != c.node_type)
        }
        None => None,
    };
    // Only the node type changes: recorded at once.
    let retype = |c: &mut Cluster| -> Result<String, ApiError> {
        if let Some(t) = &new_type {
            begin(app, &id)?;
            c.node_type = t.clone();
            let r = app.store.lock().unwrap().update_cluster(c).map_err(internal);
            app.end(&id);
            r?;
        }
        cluster_xml(app, &id, false)
    };
    let Some(num) = num else {
        if !remove.is_empty() {
            return Err(combination("CacheNodeIdsToRemove requires NumCacheNodes."));
        }
        return retype(&mut c);
    };
    if c.engine == "redis" && num != 1 {
        return Err(invalid("Cannot modify a Redis cluster to have a NumCacheNodes parameter greater than 1."));
    }
    if !(1..=40).contains(&num) {
        return Err(invalid(format!("The number of cache nodes must be between 1 and 40; got {}", num)));
    }
    if num >= current && !remove.is_empty() {
        return Err(combination("CacheNodeIdsToRemove can only be given when NumCacheNodes decreases."));
    }
    let mut victims = Vec::new();
    if num < current {
        if remove.is_empty() {
            // Not given: the newest nodes go.
            victims = nodes.iter().rev().take((current - num) as usize).map(|n| n.node_id.clone()).collect();
        } else {
            if remove.len() as i64 != current - num {
                return Err(combination(format!(
                    "The number of nodes to remove ({}) must equal the current number of nodes ({}) minus NumCacheNodes ({}).",
                    remove.len(),
                    current,
                    num
                )));
            }
            for r in &remove {
                if !nodes.iter().any(|n| &n.node_id == r) {
                    return Err(invalid(format!("Cache node {} not found in cache cluster {}", r, id)));
                }
            }
            victims = remove;
        }
    }
    if num == current {
        return retype(&mut c);
    }
    begin(app, &id)?;
    if let Some(t) = &new_type {
        c.node_type = t.clone();
    }
    {
        let mut added = Vec::new();
        for _ in current..num {
            added.push(new_node(app, &mut c).inspect_err(|_| app.end(&id))?);
        }
        let mut st = app.store.lock().unwrap();
        c.status = "modifying".into();
        st.update_cluster(&c).map_err(internal)?;
        for n in &added {
            st.upsert_node(n).map_err(internal)?;
        }
        for n in nodes.iter().filter(|n| victims.contains(&n.node_id)) {
            let mut n = n.clone();
            n.status = "deleting".into();
            st.upsert_node(&n).map_err(internal)?;
        }
    }
    let out = cluster_xml(app, &id, false)?;
    let id2 = id.clone();
    app.spawn_op(move |a| a.op_converge(&id2, None));
    Ok(out)
}

fn describe_events(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let now = now_ms();
    let time = |k: &str| -> Result<Option<i64>, ApiError> {
        match p.get(k) {
            None => Ok(None),
            Some(v) => {
                parse_time(v).map(Some).ok_or_else(|| invalid(format!("Invalid value for parameter {}: {}", k, v)))
            }
        }
    };
    let end = time("EndTime")?.unwrap_or(now);
    let start = match (time("StartTime")?, p.int("Duration")?) {
        (Some(s), _) => s,
        (None, Some(d)) => end - d * 60_000,
        (None, None) => end - 60 * 60_000,
    };
    let max = p.int("MaxRecords")?.unwrap_or(100);
    if !(20..=100).contains(&max) {
        return Err(invalid("The parameter MaxRecords must be between 20 and 100."));
    }
    if let Some(t) = p.get("SourceType") {
        if ![
            "cache-cluster",
            "cache-parameter-group",
            "cache-security-group",
            "cache-subnet-group",
            "replication-group",
            "serverless-cache",
            "serverless-cache-snapshot",
            "user",
            "user-group",
        ]
        .contains(&t)
        {
            return Err(invalid(format!("Invalid value for parameter SourceType: {}", t)));
        }
    }
    let source = p.get("SourceIdentifier").map(|s| s.to_ascii_lowercase());
    let stype = p.get("SourceType");
    let events = app.store.lock().unwrap().events(start, end).map_err(internal)?;
    let mut list: Vec<_> = events
        .into_iter()
        .filter(|e| source.as_deref().is_none_or(|s| s == e.source_id) && stype.is_none_or(|t| t == e.source_type))
        .collect();
    // Newest first, as ElastiCache lists them.
    list.reverse();
    let skip: usize = p.get("Marker").and_then(|m| m.parse().ok()).unwrap_or(0);
    let mut x = Xml::default();
    if list.len() > skip + max as usize {
        x.leaf("Marker", &(skip + max as usize).to_string());
    }
    x.open("Events");
    for e in list.iter().skip(skip).take(max as usize) {
        x.open("Event")
            .leaf("SourceIdentifier", &e.source_id)
            .leaf("SourceType", &e.source_type)
            .leaf("Message", &e.message)
            .leaf("Date", &iso8601(e.date_ms))
            .close("Event");
    }
    x.close("Events");
    Ok(x.out)
}
