//! The demo's sample "migration": what `zkparity demo` loads into its two
//! servers before comparing them.
//!
//! The source holds a small Kafka, ClickHouse, Solr and HBase estate. The
//! target is what a careless copy leaves behind:
//!
//! | where                               | what the copy did               | reported as        |
//! |-------------------------------------|---------------------------------|--------------------|
//! | `/kafka/brokers/ids/1`              | ephemeral turned persistent     | `node_kind`        |
//! | `/kafka/config/changes`             | sequential counter not carried  | `sequence_counter` |
//! | `/solr/configs/main/solrconfig.xml` | 200 KiB value cut at 128 KiB    | `data`             |
//! | `/hbase/table/orders`               | data on an inner node lost      | `data`             |
//! | `/solr/security.json`               | ACL replaced by world:anyone    | `acl`              |
//! | `/app/feature-flags`                | subtree never copied            | `missing_in_target`|
//! | `/old-cluster-leftovers`            | stale node on the target        | `extra_in_target`  |
//!
//! `/kafka/brokers/ids/2` is a live ephemeral on the source only: counted,
//! not compared, as in a real migration where brokers register on their own.

use zookeeper_client as zk;

use crate::seed::{self, SeedError};

/// Loads the estate into `source` and a careless copy of it into `target`.
/// The source's session owns the brokers' ephemeral nodes: keep it open for
/// as long as they should exist.
pub async fn load(source: &zk::Client, target: &zk::Client) -> Result<(), SeedError> {
    load_source(source).await?;
    load_target(target).await
}

fn open_acl() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

/// The nodes both sides were meant to hold, as (path, data).
fn estate() -> Vec<(String, Vec<u8>)> {
    let mut nodes: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |p: &str, d: &[u8]| nodes.push((p.to_string(), d.to_vec()));
    add("/kafka", b"");
    add("/kafka/brokers", b"");
    add("/kafka/brokers/ids", b"");
    add("/kafka/brokers/topics", b"");
    for topic in ["orders", "payments", "audit"] {
        add(
            &format!("/kafka/brokers/topics/{topic}"),
            format!(r#"{{"version":2,"partitions":{{"0":[1,2],"1":[2,1]}},"topic":"{topic}"}}"#)
                .as_bytes(),
        );
    }
    add("/kafka/config", b"");
    add("/kafka/config/topics", b"");
    add(
        "/kafka/config/topics/orders",
        br#"{"version":1,"config":{"retention.ms":"604800000"}}"#,
    );
    add("/clickhouse", b"");
    add("/clickhouse/tables", b"");
    add("/clickhouse/tables/01", b"");
    add("/clickhouse/tables/01/events", b"");
    add(
        "/clickhouse/tables/01/events/metadata",
        b"metadata format version: 1\ndate column: \nsampling expression: \n",
    );
    add(
        "/clickhouse/tables/01/events/columns",
        b"columns format version: 1\n3 columns:\n",
    );
    add("/solr", b"");
    add("/solr/configs", b"");
    add("/solr/configs/main", b"");
    add("/solr/live_nodes", b"");
    add("/hbase", b"");
    add("/hbase/table", b"");
    add("/hbase/table/orders", b"\xff\x00\x00\x00PBUF\x08\x00");
    add("/hbase/table/orders/region-1", b"\x00\x01\x02\x03");
    add("/app", b"");
    add("/app/feature-flags", b"");
    add("/app/feature-flags/new-checkout", b"on");
    add("/app/feature-flags/dark-mode", b"off");
    add("/app/settings", b"timezone=UTC");
    nodes
}

fn solr_config() -> Vec<u8> {
    let line = b"<!-- a large solrconfig.xml, as real ones are -->\n";
    line.iter().copied().cycle().take(200 * 1024).collect()
}

fn err(path: &str) -> impl Fn(zk::Error) -> SeedError + '_ {
    move |e| SeedError {
        path: path.to_string(),
        reason: e.to_string(),
    }
}

async fn load_source(c: &zk::Client) -> Result<(), SeedError> {
    seed::create_many(c, estate()).await?;
    c.create(
        "/solr/configs/main/solrconfig.xml",
        &solr_config(),
        &open_acl(),
    )
    .await
    .map_err(err("/solr/configs/main/solrconfig.xml"))?;
    // Only the admin may read or change Solr's security settings.
    let admin = [
        zk::Acl::new(
            zk::Permission::ALL,
            zk::AuthId::new("digest", "admin:x1nq8J7ObEEbQmvCr5jQ+Sd6BwU="),
        ),
        zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone()),
    ];
    c.create(
        "/solr/security.json",
        br#"{"authentication":{"class":"solr.BasicAuthPlugin"}}"#,
        &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&admin)),
    )
    .await
    .map_err(err("/solr/security.json"))?;
    // Kafka's config change notifications are persistent sequential nodes; the
    // broker deletes old ones, so the counter is ahead of the names left.
    c.create("/kafka/config/changes", b"", &open_acl())
        .await
        .map_err(err("/kafka/config/changes"))?;
    let seq = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    for _ in 0..6 {
        c.create(
            "/kafka/config/changes/config_change_",
            br#"{"version":2}"#,
            &seq,
        )
        .await
        .map_err(err("/kafka/config/changes"))?;
    }
    for i in 0..4 {
        let p = format!("/kafka/config/changes/config_change_{i:010}");
        c.delete(&p, None).await.map_err(err(&p))?;
    }
    // Two live brokers.
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    for id in [1, 2] {
        let p = format!("/kafka/brokers/ids/{id}");
        let data = format!(r#"{{"host":"kafka-{id}","port":9092}}"#);
        c.create(&p, data.as_bytes(), &eph).await.map_err(err(&p))?;
    }
    Ok(())
}

/// What a careless copy leaves on the target.
async fn load_target(c: &zk::Client) -> Result<(), SeedError> {
    let copied = estate().into_iter().filter_map(|(p, d)| {
        if p.starts_with("/app/feature-flags") {
            None
        } else if p == "/hbase/table/orders" {
            Some((p, Vec::new()))
        } else {
            Some((p, d))
        }
    });
    seed::create_many(c, copied).await?;
    let mut cut = solr_config();
    cut.truncate(128 * 1024);
    let extra = [
        ("/solr/configs/main/solrconfig.xml".to_string(), cut),
        (
            "/solr/security.json".to_string(),
            br#"{"authentication":{"class":"solr.BasicAuthPlugin"}}"#.to_vec(),
        ),
        ("/kafka/config/changes".to_string(), Vec::new()),
        (
            "/kafka/config/changes/config_change_0000000004".to_string(),
            br#"{"version":2}"#.to_vec(),
        ),
        (
            "/kafka/config/changes/config_change_0000000005".to_string(),
            br#"{"version":2}"#.to_vec(),
        ),
        (
            "/kafka/brokers/ids/1".to_string(),
            br#"{"host":"kafka-1","port":9092}"#.to_vec(),
        ),
        (
            "/old-cluster-leftovers".to_string(),
            b"decommissioned".to_vec(),
        ),
    ];
    seed::create_many(c, extra).await?;
    Ok(())
}
