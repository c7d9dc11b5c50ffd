//! Control-plane state: clusters, their nodes and events, behind [`StateStore`]; the embedded
//! default is one SQLite file ([`SqliteStore`]).

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    pub id: String,
    pub engine: String,
    pub engine_version: String,
    pub node_type: String,
    pub status: String,
    pub az: String,
    /// Unix milliseconds.
    pub created_ms: i64,
    /// The next cache node number to hand out (node ids are `0001`, `0002`, ...).
    pub next_node: i64,
    /// A member of a cluster-mode replication group: its node runs with `cluster-enabled yes`.
    pub cluster_mode: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub cluster_id: String,
    pub node_id: String,
    /// RESP port (for memcached nodes: the admin port, bound to 127.0.0.1).
    pub port: u16,
    /// memcached port (0 for Redis nodes).
    pub mc_port: u16,
    pub pid: i64,
    pub status: String,
    pub created_ms: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub source_id: String,
    pub source_type: String,
    pub message: String,
    pub date_ms: i64,
}

/// A Redis replication group (one node group, `0001`): its member clusters are ordinary cache
/// clusters (`<id>-001`, `<id>-002`, ...) of one node each.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicationGroup {
    pub id: String,
    pub description: String,
    pub status: String,
    pub automatic_failover: bool,
    pub multi_az: bool,
    pub node_type: String,
    pub engine_version: String,
    pub created_ms: i64,
    /// The member cluster that is the primary.
    pub primary: String,
    /// Member clusters with their availability zone, in creation order.
    pub members: Vec<(String, String)>,
    /// The next member number (`<id>-NNN`).
    pub next_member: i64,
    /// Ports of the primary and reader endpoints (TCP proxies in the control plane).
    pub primary_port: u16,
    pub reader_port: u16,
    /// Cluster mode enabled: the shards and any resharding in flight (`primary_port` is then the
    /// configuration endpoint's port and `primary`/`reader_port` are unused).
    pub layout: Option<crate::sharded::Layout>,
}

pub type Result<T> = std::result::Result<T, String>;

/// Where the control plane keeps its definitions. Every write is durable when it returns.
pub trait StateStore: Send {
    fn clusters(&self) -> Result<Vec<Cluster>>;
    fn cluster(&self, id: &str) -> Result<Option<Cluster>>;
    /// Insert; false if the id already exists.
    fn insert_cluster(&mut self, c: &Cluster) -> Result<bool>;
    fn update_cluster(&mut self, c: &Cluster) -> Result<()>;
    /// Remove the cluster and its nodes.
    fn delete_cluster(&mut self, id: &str) -> Result<()>;
    fn nodes(&self, cluster_id: &str) -> Result<Vec<Node>>;
    fn upsert_node(&mut self, n: &Node) -> Result<()>;
    fn delete_node(&mut self, cluster_id: &str, node_id: &str) -> Result<()>;
    fn add_event(&mut self, e: &Event) -> Result<()>;
    /// Events with `from_ms <= date <= to_ms`, oldest first.
    fn events(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Event>>;
    /// A Memcached cluster's configuration endpoint and Auto Discovery list.
    fn discovery(&self, cluster_id: &str) -> Result<Option<crate::mc_config::Discovery>>;
    fn set_discovery(&mut self, cluster_id: &str, d: &crate::mc_config::Discovery) -> Result<()>;
    fn groups(&self) -> Result<Vec<ReplicationGroup>>;
    fn group(&self, id: &str) -> Result<Option<ReplicationGroup>>;
    /// Insert; false if the id already exists.
    fn insert_group(&mut self, g: &ReplicationGroup) -> Result<bool>;
    fn update_group(&mut self, g: &ReplicationGroup) -> Result<()>;
    fn delete_group(&mut self, id: &str) -> Result<()>;
    /// A resource's tags (`cluster:ID`, `replicationgroup:ID`), in the order they were added.
    fn tags(&self, resource: &str) -> Result<Vec<(String, String)>>;
    /// Replace a resource's tags.
    fn put_tags(&mut self, resource: &str, tags: &[(String, String)]) -> Result<()>;
}

pub struct SqliteStore {
    conn: Connection,
}

fn e(err: rusqlite::Error) -> String {
    format!("state store: {}", err)
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let conn = Connection::open(path).map_err(e)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS clusters (
                id TEXT PRIMARY KEY, engine TEXT NOT NULL, engine_version TEXT NOT NULL,
                node_type TEXT NOT NULL, status TEXT NOT NULL, az TEXT NOT NULL,
                created_ms INTEGER NOT NULL, next_node INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS nodes (
                cluster_id TEXT NOT NULL, node_id TEXT NOT NULL, port INTEGER NOT NULL,
                mc_port INTEGER NOT NULL, pid INTEGER NOT NULL, status TEXT NOT NULL,
                created_ms INTEGER NOT NULL, PRIMARY KEY (cluster_id, node_id));
             CREATE TABLE IF NOT EXISTS events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, source_id TEXT NOT NULL,
                source_type TEXT NOT NULL, message TEXT NOT NULL, date_ms INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS discovery (
                cluster_id TEXT PRIMARY KEY, port INTEGER NOT NULL, version INTEGER NOT NULL,
                nodes TEXT NOT NULL);",
        )
        .map_err(e)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS replication_groups (
                id TEXT PRIMARY KEY, description TEXT NOT NULL, status TEXT NOT NULL,
                automatic_failover INTEGER NOT NULL, multi_az INTEGER NOT NULL, node_type TEXT NOT NULL,
                engine_version TEXT NOT NULL, created_ms INTEGER NOT NULL, primary_cluster TEXT NOT NULL,
                members TEXT NOT NULL, next_member INTEGER NOT NULL, primary_port INTEGER NOT NULL,
                reader_port INTEGER NOT NULL);",
        )
        .map_err(e)?;
        // Columns added after the first release: older state files get them with defaults.
        add_column(&conn, "clusters", "cluster_mode", "INTEGER NOT NULL DEFAULT 0")?;
        add_column(&conn, "replication_groups", "layout", "TEXT NOT NULL DEFAULT ''")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS tags (
                resource TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, seq INTEGER NOT NULL,
                PRIMARY KEY (resource, key));",
        )
        .map_err(e)?;
        Ok(SqliteStore { conn })
    }
}

/// `ALTER TABLE .. ADD COLUMN` unless the column exists.
fn add_column(conn: &Connection, table: &str, column: &str, decl: &str) -> Result<()> {
    let mut st = conn.prepare(&format!("PRAGMA table_info({})", table)).map_err(e)?;
    let names =
        st.query_map([], |r| r.get::<_, String>(1)).map_err(e)?.collect::<rusqlite::Result<Vec<_>>>().map_err(e)?;
    if !names.iter().any(|n| n == column) {
        conn.execute_batch(&format!("ALTER TABLE {} ADD COLUMN {} {};", table, column, decl)).map_err(e)?;
    }
    Ok(())
}

fn row_cluster(r: &rusqlite::Row) -> rusqlite::Result<Cluster> {
    Ok(Cluster {
        id: r.get(0)?,
        engine: r.get(1)?,
        engine_version: r.get(2)?,
        node_type: r.get(3)?,
        status: r.get(4)?,
        az: r.get(5)?,
        created_ms: r.get(6)?,
        next_node: r.get(7)?,
        cluster_mode: r.get(8)?,
    })
}

const CLUSTER_COLS: &str = "id, engine, engine_version, node_type, status, az, created_ms, next_node, cluster_mode";

impl StateStore for SqliteStore {
    fn clusters(&self) -> Result<Vec<Cluster>> {
        let mut st =
            self.conn.prepare(&format!("SELECT {} FROM clusters ORDER BY created_ms, id", CLUSTER_COLS)).map_err(e)?;
        let rows = st.query_map([], row_cluster).map_err(e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(e)
    }

    fn cluster(&self, id: &str) -> Result<Option<Cluster>> {
        self.conn
            .query_row(&format!("SELECT {} FROM clusters WHERE id = ?1", CLUSTER_COLS), [id], row_cluster)
            .optional()
            .map_err(e)
    }

    fn insert_cluster(&mut self, c: &Cluster) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO clusters (id, engine, engine_version, node_type, status, az, created_ms, next_node, cluster_mode)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![c.id, c.engine, c.engine_version, c.node_type, c.status, c.az, c.created_ms, c.next_node, c.cluster_mode],
            )
            .map_err(e)?;
        Ok(n == 1)
    }

    fn update_cluster(&mut self, c: &Cluster) -> Result<()> {
        self.conn
            .execute(
                "UPDATE clusters SET engine = ?2, engine_version = ?3, node_type = ?4, status = ?5, az = ?6,
                 created_ms = ?7, next_node = ?8, cluster_mode = ?9 WHERE id = ?1",
                params![
                    c.id,
                    c.engine,
                    c.engine_version,
                    c.node_type,
                    c.status,
                    c.az,
                    c.created_ms,
                    c.next_node,
                    c.cluster_mode
                ],
            )
            .map_err(e)?;
        Ok(())
    }

    fn delete_cluster(&mut self, id: &str) -> Result<()> {
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute("DELETE FROM nodes WHERE cluster_id = ?1", [id]).map_err(e)?;
        tx.execute("DELETE FROM clusters WHERE id = ?1", [id]).map_err(e)?;
        tx.execute("DELETE FROM discovery WHERE cluster_id = ?1", [id]).map_err(e)?;
        tx.execute("DELETE FROM tags WHERE resource = ?1", [format!("cluster:{}", id)]).map_err(e)?;
        tx.commit().map_err(e)
    }

    fn nodes(&self, cluster_id: &str) -> Result<Vec<Node>> {
        let mut st = self
            .conn
            .prepare("SELECT cluster_id, node_id, port, mc_port, pid, status, created_ms FROM nodes WHERE cluster_id = ?1 ORDER BY node_id")
            .map_err(e)?;
        let rows = st
            .query_map([cluster_id], |r| {
                Ok(Node {
                    cluster_id: r.get(0)?,
                    node_id: r.get(1)?,
                    port: r.get(2)?,
                    mc_port: r.get(3)?,
                    pid: r.get(4)?,
                    status: r.get(5)?,
                    created_ms: r.get(6)?,
                })
            })
            .map_err(e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(e)
    }

    fn upsert_node(&mut self, n: &Node) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO nodes (cluster_id, node_id, port, mc_port, pid, status, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![n.cluster_id, n.node_id, n.port, n.mc_port, n.pid, n.status, n.created_ms],
            )
            .map_err(e)?;
        Ok(())
    }

    fn delete_node(&mut self, cluster_id: &str, node_id: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM nodes WHERE cluster_id = ?1 AND node_id = ?2", [cluster_id, node_id])
            .map_err(e)?;
        Ok(())
    }

    fn add_event(&mut self, ev: &Event) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO events (source_id, source_type, message, date_ms) VALUES (?1, ?2, ?3, ?4)",
                params![ev.source_id, ev.source_type, ev.message, ev.date_ms],
            )
            .map_err(e)?;
        Ok(())
    }

    fn events(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Event>> {
        let mut st = self
            .conn
            .prepare("SELECT source_id, source_type, message, date_ms FROM events WHERE date_ms >= ?1 AND date_ms <= ?2 ORDER BY seq")
            .map_err(e)?;
        let rows = st
            .query_map([from_ms, to_ms], |r| {
                Ok(Event { source_id: r.get(0)?, source_type: r.get(1)?, message: r.get(2)?, date_ms: r.get(3)? })
            })
            .map_err(e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(e)
    }

    fn discovery(&self, cluster_id: &str) -> Result<Option<crate::mc_config::Discovery>> {
        self.conn
            .query_row("SELECT port, version, nodes FROM discovery WHERE cluster_id = ?1", [cluster_id], |r| {
                Ok(crate::mc_config::Discovery { port: r.get(0)?, version: r.get(1)?, nodes: r.get(2)? })
            })
            .optional()
            .map_err(e)
    }

    fn set_discovery(&mut self, cluster_id: &str, d: &crate::mc_config::Discovery) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO discovery (cluster_id, port, version, nodes) VALUES (?1, ?2, ?3, ?4)",
                params![cluster_id, d.port, d.version, d.nodes],
            )
            .map_err(e)?;
        Ok(())
    }

    fn groups(&self) -> Result<Vec<ReplicationGroup>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {} FROM replication_groups ORDER BY created_ms, id", GROUP_COLS))
            .map_err(e)?;
        let rows = st.query_map([], row_group).map_err(e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(e)
    }

    fn group(&self, id: &str) -> Result<Option<ReplicationGroup>> {
        self.conn
            .query_row(&format!("SELECT {} FROM replication_groups WHERE id = ?1", GROUP_COLS), [id], row_group)
            .optional()
            .map_err(e)
    }

    fn insert_group(&mut self, g: &ReplicationGroup) -> Result<bool> {
        let n = self
            .conn
            .execute(
                &format!("INSERT OR IGNORE INTO replication_groups ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)", GROUP_COLS),
                group_params(g),
            )
            .map_err(e)?;
        Ok(n == 1)
    }

    fn update_group(&mut self, g: &ReplicationGroup) -> Result<()> {
        self.conn
            .execute(
                "UPDATE replication_groups SET description = ?2, status = ?3, automatic_failover = ?4, multi_az = ?5,
                 node_type = ?6, engine_version = ?7, created_ms = ?8, primary_cluster = ?9, members = ?10,
                 next_member = ?11, primary_port = ?12, reader_port = ?13, layout = ?14 WHERE id = ?1",
                group_params(g),
            )
            .map_err(e)?;
        Ok(())
    }

    fn delete_group(&mut self, id: &str) -> Result<()> {
        self.conn.execute("DELETE FROM replication_groups WHERE id = ?1", [id]).map_err(e)?;
        self.conn.execute("DELETE FROM tags WHERE resource = ?1", [format!("replicationgroup:{}", id)]).map_err(e)?;
        Ok(())
    }

    fn tags(&self, resource: &str) -> Result<Vec<(String, String)>> {
        let mut st = self.conn.prepare("SELECT key, value FROM tags WHERE resource = ?1 ORDER BY seq").map_err(e)?;
        let rows = st.query_map([resource], |r| Ok((r.get(0)?, r.get(1)?))).map_err(e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(e)
    }

    fn put_tags(&mut self, resource: &str, tags: &[(String, String)]) -> Result<()> {
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute("DELETE FROM tags WHERE resource = ?1", [resource]).map_err(e)?;
        for (i, (k, v)) in tags.iter().enumerate() {
            tx.execute(
                "INSERT INTO tags (resource, key, value, seq) VALUES (?1, ?2, ?3, ?4)",
                params![resource, k, v, i as i64],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)
    }
}

const GROUP_COLS: &str = "id, description, status, automatic_failover, multi_az, node_type, engine_version, created_ms, primary_cluster, members, next_member, primary_port, reader_port, layout";

fn group_params(g: &ReplicationGroup) -> rusqlite::ParamsFromIter<Vec<rusqlite::types::Value>> {
    use rusqlite::types::Value::{Integer, Text};
    // Members as `cluster@az` separated by spaces (ids and zones contain neither).
    let members: Vec<String> = g.members.iter().map(|(c, az)| format!("{}@{}", c, az)).collect();
    rusqlite::params_from_iter(vec![
        Text(g.id.clone()),
        Text(g.description.clone()),
        Text(g.status.clone()),
        Integer(g.automatic_failover as i64),
        Integer(g.multi_az as i64),
        Text(g.node_type.clone()),
        Text(g.engine_version.clone()),
        Integer(g.created_ms),
        Text(g.primary.clone()),
        Text(members.join(" ")),
        Integer(g.next_member),
        Integer(g.primary_port as i64),
        Integer(g.reader_port as i64),
        Text(g.layout.as_ref().map(|l| serde_json::to_string(l).unwrap_or_default()).unwrap_or_default()),
    ])
}

fn row_group(r: &rusqlite::Row) -> rusqlite::Result<ReplicationGroup> {
    let members: String = r.get(9)?;
    Ok(ReplicationGroup {
        id: r.get(0)?,
        description: r.get(1)?,
        status: r.get(2)?,
        automatic_failover: r.get(3)?,
        multi_az: r.get(4)?,
        node_type: r.get(5)?,
        engine_version: r.get(6)?,
        created_ms: r.get(7)?,
        primary: r.get(8)?,
        members: members
            .split(' ')
            .filter(|m| !m.is_empty())
            .map(|m| {
                let (c, az) = m.split_once('@').unwrap_or((m, ""));
                (c.to_string(), az.to_string())
            })
            .collect(),
        next_member: r.get(10)?,
        primary_port: r.get(11)?,
        reader_port: r.get(12)?,
        layout: {
            let json: String = r.get(13)?;
            if json.is_empty() {
                None
            } else {
                Some(serde_json::from_str(&json).map_err(|err| {
                    rusqlite::Error::FromSqlConversionFailure(13, rusqlite::types::Type::Text, Box::new(err))
                })?)
            }
        },
    })
}
