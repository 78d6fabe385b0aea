//! A corpus of real application estates on real ZooKeeper servers: trees
//! laid out as Kafka, HBase, Solr, NiFi, Hadoop HA with YARN, Curator's
//! recipes and ClickHouse write them, each copied by `zkparity repair` while
//! the application lives on, then compared: a faithful copy compares
//! identical however the application churns its ephemerals, and each fault
//! a copy tool leaves is found with its kind at its path and nothing else.
//!
//! Where the layouts come from (names, modes, data formats):
//! - Kafka (ZooKeeper mode): `kafka.zk.ZkData` and `KafkaZkClient`: broker
//!   registrations and `/controller` are ephemeral JSON; config change and
//!   ISR change notifications are persistent sequential, and deleted once
//!   processed; secured clusters give anyone READ and the broker identity
//!   everything (digest here, SASL in production).
//! - HBase: `ZNodePaths` and `RecoverableZooKeeper`: every value is the
//!   `0xFF`, id length, id metadata prefix then `PBUF` and a protobuf;
//!   region servers and masters register ephemerals named
//!   `host,port,startcode` (a 13-digit millisecond start code, never a
//!   sequence number); split WAL tasks are named after URL-encoded WAL paths.
//! - Solr: `ZkStateReader`, `LeaderElector`, `OverseerElectionContext` and
//!   `ZkDistributedQueue`: live nodes ephemeral, election nodes
//!   `<sessionid>-<node or core_node>-n_<seq>` ephemeral sequential, the
//!   leader ephemeral, the overseer's queues `qn-<seq>` persistent sequential.
//! - NiFi: `CuratorLeaderElectionManager` (a Curator `LeaderSelector` per
//!   role, its mutex nodes holding the participant id) and
//!   `ZooKeeperStateProvider` (component state: a version byte, a count,
//!   then `writeUTF` keys and values).
//! - Hadoop: `ActiveStandbyElector` (`ActiveStandbyElectorLock` ephemeral,
//!   `ActiveBreadCrumb` persistent, both an `HAZKInfoProto` or
//!   `ActiveRMInfoProto`) and YARN's `ZKRMStateStore`.
//! - Curator: `StandardLockInternalsDriver`, `LeaderLatch`,
//!   `DistributedQueue`, `SharedCount` and `ServiceDiscoveryImpl`: protected
//!   `_c_<uuid>-lock-<seq>` / `-latch-<seq>` ephemeral sequential nodes under
//!   container parents, `queue-<seq>` persistent sequential items, a 4-byte
//!   big-endian count, ephemeral JSON service instances named by UUID.
//! - ClickHouse: `StorageReplicatedMergeTree`, `EphemeralLockInZooKeeper`
//!   and `zkutil::LeaderElection`: `log/log-<seq>` and replica queues
//!   persistent sequential, mutations persistent sequential with an empty
//!   prefix, dedup `blocks/<partition>_<u64>_<u64>` persistent (long digit
//!   runs, not sequence numbers), block numbers allocated as persistent
//!   sequential `block-<seq>` nodes whose ephemeral sequential holders live
//!   in `temp/abandonable_lock-<seq>`, `is_active` and `leader_election-<seq>`
//!   ephemeral.

mod common;
mod estates_support;

use common::*;
use estates_support::*;
use tokio::sync::Mutex;
use zookeeper_client as zk;

use zk::CreateMode::{Container, EphemeralSequential, PersistentSequential};

// ---------------------------------------------------------------------------
// Encodings the applications use

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A protobuf varint field.
fn pb_int(field: u8, v: u64) -> Vec<u8> {
    let mut out = vec![field << 3];
    varint(v, &mut out);
    out
}

/// A protobuf length-delimited field (string, bytes, message).
fn pb_bytes(field: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![(field << 3) | 2];
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// A UUID-shaped name, the same for the same `n`.
fn uuid(n: u64) -> String {
    let mut x = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    let y = x ^ (x >> 31);
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        y >> 32,
        (y >> 16) & 0xffff,
        y & 0xfff,
        (x >> 20) & 0xfff,
        (x ^ y) & 0xffff_ffff_ffff
    )
}

// ---------------------------------------------------------------------------
// Kafka

fn broker_json(id: usize, timestamp: u64) -> Vec<u8> {
    format!(
        "{{\"features\":{{}},\"listener_security_protocol_map\":{{\"PLAINTEXT\":\"PLAINTEXT\"}},\
         \"endpoints\":[\"PLAINTEXT://kafka-{id}.example.net:9092\"],\"jmx_port\":-1,\"port\":9092,\
         \"host\":\"kafka-{id}.example.net\",\"version\":5,\"timestamp\":\"{timestamp}\"}}"
    )
    .into_bytes()
}

struct Kafka {
    root: String,
    /// Broker `i + 1`'s session.
    brokers: Mutex<Vec<zk::Client>>,
}

impl Kafka {
    async fn build(s: &zk::Client, root: &str) -> Kafka {
        for dir in [
            "consumers",
            "brokers/ids",
            "brokers/seqid",
            "config/clients",
            "config/users",
            "config/brokers",
            "config/ips",
            "config/changes",
            "admin/delete_topics",
            "isr_change_notification",
            "log_dir_event_notification",
        ] {
            put(s, &format!("{root}/{dir}"), b"").await;
        }
        put(
            s,
            &format!("{root}/cluster/id"),
            b"{\"version\":\"1\",\"id\":\"k7Zp1vQ2T9eYw3nX4bLs0A\"}",
        )
        .await;
        put(s, &format!("{root}/controller_epoch"), b"3").await;
        put(
            s,
            &format!("{root}/latest_producer_id_block"),
            b"{\"version\":1,\"broker\":1,\"block_start\":\"0\",\"block_end\":\"999\"}",
        )
        .await;
        put(
            s,
            &format!("{root}/feature"),
            b"{\"features\":{},\"version\":2,\"status\":1}",
        )
        .await;
        let secured = secured_acl();
        let secured = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&secured));
        for (topic, partitions, topic_id) in [
            ("orders", 3, "P4sYk1o9QmKx2Lr7cVb0wA"),
            ("payments", 2, "Zt6Hq0Wm3Ne8Uj5Ay1Ck2g"),
            ("old-logs", 1, "Bd3Fw7Rx9Ts2Mv6Lp4Gn8q"),
        ] {
            let assignment: Vec<String> = (0..partitions)
                .map(|p| {
                    format!(
                        "\"{p}\":[{},{},{}]",
                        p % 3 + 1,
                        (p + 1) % 3 + 1,
                        (p + 2) % 3 + 1
                    )
                })
                .collect();
            put(
                s,
                &format!("{root}/brokers/topics/{topic}"),
                format!(
                    "{{\"partitions\":{{{}}},\"topic_id\":\"{topic_id}\",\"adding_replicas\":{{}},\
                     \"removing_replicas\":{{}},\"version\":3}}",
                    assignment.join(",")
                )
                .as_bytes(),
            )
            .await;
            for p in 0..partitions {
                put_with(
                    s,
                    &format!("{root}/brokers/topics/{topic}/partitions/{p}/state"),
                    format!(
                        "{{\"controller_epoch\":3,\"leader\":{},\"version\":1,\"leader_epoch\":5,\
                         \"isr\":[{},{}]}}",
                        p % 3 + 1,
                        p % 3 + 1,
                        (p + 1) % 3 + 1
                    )
                    .as_bytes(),
                    &secured,
                )
                .await;
            }
            put_with(
                s,
                &format!("{root}/config/topics/{topic}"),
                b"{\"version\":1,\"config\":{\"retention.ms\":\"86400000\"}}",
                &secured,
            )
            .await;
        }
        // Marked for deletion: an empty node named after the topic.
        put(s, &format!("{root}/admin/delete_topics/old-logs"), b"").await;
        // Notifications handed out, the older ones expired or processed.
        let changes = format!("{root}/config/changes/config_change_");
        let mut made = Vec::new();
        for i in 0..12 {
            let entity = ["topics/orders", "topics/payments", "clients/app-7"][i % 3];
            made.push(
                put_sequential(
                    s,
                    &changes,
                    format!("{{\"version\":2,\"entity_path\":\"{entity}\"}}").as_bytes(),
                    PersistentSequential,
                )
                .await,
            );
        }
        for path in &made[..8] {
            remove(s, path).await;
        }
        let isr = format!("{root}/isr_change_notification/isr_change_");
        let mut made = Vec::new();
        for p in 0..6 {
            made.push(
                put_sequential(
                    s,
                    &isr,
                    format!("{{\"version\":1,\"partitions\":[{{\"topic\":\"orders\",\"partition\":{}}}]}}", p % 3)
                        .as_bytes(),
                    PersistentSequential,
                )
                .await,
            );
        }
        for path in &made[..4] {
            remove(s, path).await;
        }
        let mut brokers = Vec::new();
        for id in 1..=3 {
            let c = session().await;
            put_ephemeral(
                &c,
                &format!("{root}/brokers/ids/{id}"),
                &broker_json(id, 1_700_000_000_000 + id as u64),
            )
            .await;
            brokers.push(c);
        }
        put_ephemeral(
            &brokers[0],
            &format!("{root}/controller"),
            b"{\"version\":1,\"brokerid\":1,\"timestamp\":\"1700000000001\"}",
        )
        .await;
        Kafka {
            root: root.to_string(),
            brokers: Mutex::new(brokers),
        }
    }
}

impl App for Kafka {
    /// Brokers 2 and 3 take turns restarting: the registration goes with the
    /// old session and comes back on a new one (broker 1, the controller,
    /// stays: a controller move would bump `/controller_epoch`, a real change).
    async fn churn(&self, round: usize) {
        let i = 1 + round % 2;
        let mut brokers = self.brokers.lock().await;
        let path = format!("{}/brokers/ids/{}", self.root, i + 1);
        remove(&brokers[i], &path).await;
        let c = session().await;
        put_ephemeral(
            &c,
            &path,
            &broker_json(i + 1, 1_700_000_100_000 + round as u64),
        )
        .await;
        brokers[i] = c;
    }
}

#[tokio::test]
async fn kafka_estate_copied_by_repair_while_brokers_churn_compares_identical_and_copy_faults_are_found(
) {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("kafka");
    let kafka = Kafka::build(&s, &root).await;
    let kafka = copy_while_churning(kafka, &root, 4).await;
    assert_identical("kafka", &root).await;
    let mut agent = watch("kafka", &root);
    let mut round = 1000;
    agent.stays_identical(&*kafka, &mut round, 3).await;

    recreate_with_counter_behind(&t, &format!("{root}/config/changes")).await;
    let state = format!("{root}/brokers/topics/orders/partitions/0/state");
    loosen_acl(&t, &state).await;
    let lost = format!("{root}/brokers/topics/payments/partitions/1/state");
    lose(&t, &lost).await;
    let expected = [
        diff("sequence_counter", format!("{root}/config/changes")),
        diff("acl", &state),
        diff("missing_in_target", &lost),
    ];
    assert_exactly("kafka", &root, &expected).await;
    agent.confirms_exactly(&expected).await;
    drop(kafka);
}

// ---------------------------------------------------------------------------
// HBase

/// `RecoverableZooKeeper.appendMetaData` then `ProtobufUtil.prependPBMagic`.
fn hbase_value(id: &str, pb: &[u8]) -> Vec<u8> {
    let mut out = vec![0xff];
    out.extend_from_slice(&(id.len() as u32).to_be_bytes());
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"PBUF");
    out.extend_from_slice(pb);
    out
}

fn server_name_pb(host: &str, port: u64, start_code: u64) -> Vec<u8> {
    [
        pb_bytes(1, host.as_bytes()),
        pb_int(2, port),
        pb_int(3, start_code),
    ]
    .concat()
}

/// The `Master` message, as the active and backup masters write it.
fn master_value(host: &str, start_code: u64) -> Vec<u8> {
    let pb = [
        pb_bytes(1, &server_name_pb(host, 16000, start_code)),
        pb_int(2, 0),
        pb_int(3, 16010),
    ]
    .concat();
    hbase_value(&format!("master:16000-0x{start_code:x}"), &pb)
}

fn server_name(host: &str, port: u16, start_code: u64) -> String {
    format!("{host},{port},{start_code}")
}

struct HBase {
    base: String,
    /// Region server sessions and the names they registered.
    rs: Mutex<Vec<(zk::Client, String)>>,
    backups: Mutex<Vec<(zk::Client, String)>>,
    _master: zk::Client,
}

impl HBase {
    async fn build(s: &zk::Client, root: &str) -> HBase {
        let base = format!("{root}/hbase");
        for dir in [
            "rs",
            "backup-masters",
            "draining",
            "namespace/default",
            "namespace/hbase",
            "replication/peers",
            "replication/rs",
            "flush-table-proc/acquired",
            "flush-table-proc/reached",
            "flush-table-proc/abort",
            "online-snapshot/acquired",
            "online-snapshot/reached",
            "online-snapshot/abort",
            "splitWAL",
        ] {
            put(s, &format!("{base}/{dir}"), b"").await;
        }
        let id = "master:16000-0x18bd2f7c9e40000";
        put(
            s,
            &format!("{base}/hbaseid"),
            &hbase_value(id, &pb_bytes(1, b"3f8a2c1e-5b7d-4e9f-a0c6-d2b4e8f1a7c3")),
        )
        .await;
        put(
            s,
            &format!("{base}/running"),
            &hbase_value(id, &pb_bytes(1, b"Tue Nov 14 22:13:20 UTC 2023")),
        )
        .await;
        put(
            s,
            &format!("{base}/meta-region-server"),
            &hbase_value(
                id,
                &[
                    pb_bytes(
                        1,
                        &server_name_pb("rs-1.example.net", 16020, 1_700_000_000_001),
                    ),
                    pb_int(2, 0),
                    pb_int(3, 3),
                ]
                .concat(),
            ),
        )
        .await;
        for table in ["usertable", "hbase:namespace", "analytics:events"] {
            put(
                s,
                &format!("{base}/table/{table}"),
                &hbase_value(id, &pb_int(1, 0)),
            )
            .await;
        }
        for switch in ["balancer", "split", "merge"] {
            put(
                s,
                &format!("{base}/switch/{switch}"),
                &hbase_value(id, &pb_int(1, 1)),
            )
            .await;
        }
        // A dead region server's WALs waiting to be split: names end in
        // start codes and WAL timestamps, not sequence numbers.
        for (n, wal) in [1_700_000_100_003u64, 1_700_000_200_003].iter().enumerate() {
            let dead = "rs-9.example.net%2C16020%2C1700000000009";
            let name = format!(
                "WALs%2F{dead}-splitting%2Frs-9.example.net%252C16020%252C1700000000009.{wal}"
            );
            let task = [
                pb_int(1, n as u64),
                pb_bytes(
                    2,
                    &server_name_pb("rs-1.example.net", 16020, 1_700_000_000_001),
                ),
            ]
            .concat();
            put(
                s,
                &format!("{base}/splitWAL/{name}"),
                &hbase_value(id, &task),
            )
            .await;
        }
        let master = session().await;
        put_ephemeral(
            &master,
            &format!("{base}/master"),
            &master_value("master-1.example.net", 1_700_000_000_000),
        )
        .await;
        let mut backups = Vec::new();
        for i in 2..=3 {
            let c = session().await;
            let name = server_name(
                &format!("master-{i}.example.net"),
                16000,
                1_700_000_000_000 + i,
            );
            put_ephemeral(
                &c,
                &format!("{base}/backup-masters/{name}"),
                &master_value(&format!("master-{i}.example.net"), 1_700_000_000_000 + i),
            )
            .await;
            backups.push((c, name));
        }
        let mut rs = Vec::new();
        for i in 1..=3 {
            rs.push(Self::start_rs(&base, i, 1_700_000_000_000 + i as u64).await);
        }
        HBase {
            base,
            rs: Mutex::new(rs),
            backups: Mutex::new(backups),
            _master: master,
        }
    }

    async fn start_rs(base: &str, i: usize, start_code: u64) -> (zk::Client, String) {
        let c = session().await;
        let name = server_name(&format!("rs-{i}.example.net"), 16020, start_code);
        let info = pb_int(1, 16030);
        put_ephemeral(
            &c,
            &format!("{base}/rs/{name}"),
            &hbase_value(&format!("regionserver:16020-0x{start_code:x}"), &info),
        )
        .await;
        (c, name)
    }
}

impl App for HBase {
    /// A region server restarts every round, a backup master every third:
    /// each comes back under a new start code on a new session.
    async fn churn(&self, round: usize) {
        let start_code = 1_700_000_100_000 + round as u64 * 7_919;
        let i = round % 3;
        let mut rs = self.rs.lock().await;
        remove(&rs[i].0, &format!("{}/rs/{}", self.base, rs[i].1)).await;
        rs[i] = Self::start_rs(&self.base, i + 1, start_code).await;
        if round % 3 == 0 {
            let mut backups = self.backups.lock().await;
            let j = (round / 3) % 2;
            remove(
                &backups[j].0,
                &format!("{}/backup-masters/{}", self.base, backups[j].1),
            )
            .await;
            let host = format!("master-{}.example.net", j + 2);
            let c = session().await;
            let name = server_name(&host, 16000, start_code);
            put_ephemeral(
                &c,
                &format!("{}/backup-masters/{name}", self.base),
                &master_value(&host, start_code),
            )
            .await;
            backups[j] = (c, name);
        }
    }
}

#[tokio::test]
async fn hbase_estate_copied_by_repair_while_region_servers_restart_compares_identical_and_copy_faults_are_found(
) {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("hbase");
    let hbase = HBase::build(&s, &root).await;
    let hbase = copy_while_churning(hbase, &root, 4).await;
    assert_identical("hbase", &root).await;
    let mut agent = watch("hbase", &root);
    let mut round = 1000;
    agent.stays_identical(&*hbase, &mut round, 3).await;

    let master = format!("{root}/hbase/master");
    persist_ephemeral(&s, &t, &master).await;
    let table = format!("{root}/hbase/table/analytics:events");
    lose(&t, &table).await;
    let expected = [
        diff("node_kind", &master),
        diff("missing_in_target", &table),
    ];
    assert_exactly("hbase", &root, &expected).await;
    agent.confirms_exactly(&expected).await;
    drop(hbase);
}

// ---------------------------------------------------------------------------
// Solr

fn solr_node(i: usize) -> String {
    format!("10.0.0.{i}:8983_solr")
}

fn replica_json(core: &str, core_node: &str, node: usize, leader: bool) -> String {
    let leader = if leader { ",\"leader\":\"true\"" } else { "" };
    format!(
        "\"{core_node}\":{{\"core\":\"{core}\",\"base_url\":\"http://10.0.0.{node}:8983/solr\",\
         \"node_name\":\"{}\",\"state\":\"active\",\"type\":\"NRT\",\"force_set_state\":\"false\"{leader}}}",
        solr_node(node)
    )
}

/// `/collections/<name>/state.json` with `shards` shards of two replicas.
fn state_json(name: &str, shards: usize) -> Vec<u8> {
    let step = (1u64 << 32) / shards as u64;
    let shard_list: Vec<String> = (0..shards)
        .map(|i| {
            let n = i + 1;
            let (lo, hi) = (
                (0x8000_0000u64 + i as u64 * step) as u32,
                (0x8000_0000u64 + (i as u64 + 1) * step - 1) as u32,
            );
            format!(
                "\"shard{n}\":{{\"range\":\"{lo:08x}-{hi:08x}\",\"state\":\"active\",\"replicas\":{{{},{}}}}}",
                replica_json(&format!("{name}_shard{n}_replica_n{}", 2 * i + 1), &format!("core_node{}", 2 * i + 3), 1, true),
                replica_json(&format!("{name}_shard{n}_replica_n{}", 2 * i + 2), &format!("core_node{}", 2 * i + 4), 2, false),
            )
        })
        .collect();
    format!(
        "{{\"{name}\":{{\"pullReplicas\":\"0\",\"replicationFactor\":\"2\",\"shards\":{{{}}},\
         \"router\":{{\"name\":\"compositeId\"}},\"maxShardsPerNode\":\"-1\",\"autoAddReplicas\":\"false\",\
         \"nrtReplicas\":\"2\",\"tlogReplicas\":\"0\"}}}}",
        shard_list.join(",")
    )
    .into_bytes()
}

/// A Solr node's session and the election nodes it joined with.
struct SolrNode {
    c: zk::Client,
    overseer_election: String,
    shard_election: String,
}

struct Solr {
    root: String,
    nodes: Mutex<Vec<SolrNode>>,
}

impl Solr {
    /// Node `i` comes up: it registers as live and joins the overseer
    /// election and its core's shard leader election.
    async fn start_node(root: &str, i: usize) -> SolrNode {
        let c = session().await;
        put_ephemeral(&c, &format!("{root}/live_nodes/{}", solr_node(i)), b"").await;
        let sid = c.session_id().0;
        let overseer_election = put_sequential(
            &c,
            &format!("{root}/overseer_elect/election/{sid}-{}-n_", solr_node(i)),
            b"",
            EphemeralSequential,
        )
        .await;
        let shard_election = put_sequential(
            &c,
            &format!(
                "{root}/collections/orders/leader_elect/shard1/election/{sid}-core_node{}-n_",
                i + 2
            ),
            b"",
            EphemeralSequential,
        )
        .await;
        SolrNode {
            c,
            overseer_election,
            shard_election,
        }
    }

    async fn build(s: &zk::Client, root: &str) -> Solr {
        for dir in [
            "overseer/queue-work",
            "overseer/collection-queue-work",
            "overseer/collection-map-running",
            "overseer/collection-map-completed",
            "overseer/collection-map-failure",
            "overseer/async_ids",
            "overseer_elect/election",
            "live_nodes",
            "collections/orders/leader_elect/shard1/election",
            "collections/orders/leaders/shard1",
        ] {
            put(s, &format!("{root}/{dir}"), b"").await;
        }
        put(s, &format!("{root}/clusterstate.json"), b"{}").await;
        put(
            s,
            &format!("{root}/aliases.json"),
            b"{\"collection\":{\"current\":\"orders\"}}",
        )
        .await;
        put(
            s,
            &format!("{root}/clusterprops.json"),
            b"{\"urlScheme\":\"http\"}",
        )
        .await;
        put(
            s,
            &format!("{root}/security.json"),
            b"{\"authentication\":{\"blockUnknown\":true,\"class\":\"solr.BasicAuthPlugin\",\
              \"credentials\":{\"solr\":\"IV0EHq1OnNrj6gvRCwvFwTrZ1+z1oBbnQdiVC3otuq0= Ndd7LKvVBAaZIF0QAVi1ekCfAJXr1GGfLtRUXhgrF8c=\"}},\
              \"authorization\":{\"class\":\"solr.RuleBasedAuthorizationPlugin\",\
              \"permissions\":[{\"name\":\"all\",\"role\":\"admin\"}],\"user-role\":{\"solr\":\"admin\"}}}",
        )
        .await;
        put(s, &format!("{root}/configs/_default/solrconfig.xml"), b"<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<config><luceneMatchVersion>8.11.2</luceneMatchVersion></config>\n").await;
        put(s, &format!("{root}/configs/_default/managed-schema"), b"<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<schema name=\"default-config\" version=\"1.6\"><uniqueKey>id</uniqueKey></schema>\n").await;
        put(
            s,
            &format!("{root}/collections/orders"),
            b"{\"configName\":\"_default\"}",
        )
        .await;
        put(
            s,
            &format!("{root}/collections/orders/state.json"),
            &state_json("orders", 1),
        )
        .await;
        put(
            s,
            &format!("{root}/collections/orders/terms/shard1"),
            b"{\"core_node3\":4,\"core_node4\":4}",
        )
        .await;
        // A collection with hundreds of shards: its state.json passes 128 KiB.
        let logs = state_json("logs", 400);
        assert!(
            logs.len() > 160 * 1024,
            "state.json of {} bytes",
            logs.len()
        );
        put(
            s,
            &format!("{root}/collections/logs"),
            b"{\"configName\":\"_default\"}",
        )
        .await;
        put(s, &format!("{root}/collections/logs/state.json"), &logs).await;
        // The overseer worked through most of its queues.
        for (queue, n, done) in [("queue", 10, 7), ("collection-queue-work", 4, 3)] {
            let mut made = Vec::new();
            for k in 0..n {
                let msg = format!(
                    "{{\"operation\":\"state\",\"state\":\"active\",\"core_node_name\":\"core_node{}\",\
                     \"collection\":\"orders\",\"shard\":\"shard1\",\"node_name\":\"{}\"}}",
                    k % 2 + 3,
                    solr_node(k % 2 + 1)
                );
                made.push(
                    put_sequential(
                        s,
                        &format!("{root}/overseer/{queue}/qn-"),
                        msg.as_bytes(),
                        PersistentSequential,
                    )
                    .await,
                );
            }
            for path in &made[..done] {
                remove(s, path).await;
            }
        }
        let mut nodes = Vec::new();
        for i in 1..=3 {
            nodes.push(Self::start_node(root, i).await);
        }
        // Node 1 won both elections.
        put_ephemeral(
            &nodes[0].c,
            &format!("{root}/overseer_elect/leader"),
            format!(
                "{{\"id\":\"{}\"}}",
                nodes[0].overseer_election.rsplit('/').next().unwrap()
            )
            .as_bytes(),
        )
        .await;
        put_ephemeral(
            &nodes[0].c,
            &format!("{root}/collections/orders/leaders/shard1/leader"),
            format!(
                "{{{}}}",
                replica_json("orders_shard1_replica_n1", "core_node3", 1, true)
            )
            .as_bytes(),
        )
        .await;
        Solr {
            root: root.to_string(),
            nodes: Mutex::new(nodes),
        }
    }
}

impl App for Solr {
    /// Nodes 2 and 3 take turns restarting; each rejoins both elections at
    /// the back, with its new session id in the names.
    async fn churn(&self, round: usize) {
        let i = 1 + round % 2;
        let mut nodes = self.nodes.lock().await;
        let old = &nodes[i];
        remove(&old.c, &old.shard_election).await;
        remove(&old.c, &old.overseer_election).await;
        remove(
            &old.c,
            &format!("{}/live_nodes/{}", self.root, solr_node(i + 1)),
        )
        .await;
        nodes[i] = Self::start_node(&self.root, i + 1).await;
    }
}

#[tokio::test]
async fn solr_estate_copied_by_repair_while_nodes_rejoin_elections_compares_identical_and_copy_faults_are_found(
) {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("solr");
    let solr = Solr::build(&s, &root).await;
    let solr = copy_while_churning(solr, &root, 4).await;
    assert_identical("solr", &root).await;
    let mut agent = watch("solr", &root);
    let mut round = 1000;
    agent.stays_identical(&*solr, &mut round, 3).await;

    let state = format!("{root}/collections/logs/state.json");
    cut_value(&t, &state).await;
    recreate_with_counter_behind(&t, &format!("{root}/overseer/queue")).await;
    let expected = [
        diff("data", &state),
        diff("sequence_counter", format!("{root}/overseer/queue")),
    ];
    assert_exactly("solr", &root, &expected).await;
    agent.confirms_exactly(&expected).await;
    drop(solr);
}

// ---------------------------------------------------------------------------
// NiFi

/// `ZooKeeperStateProvider.serialize`: version 1, the entry count, then
/// `writeUTF` key, a present flag and `writeUTF` value per entry.
fn nifi_state(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut out = vec![1u8];
    out.extend_from_slice(&(entries.len() as i32).to_be_bytes());
    let utf = |s: &str, out: &mut Vec<u8>| {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    for (k, v) in entries {
        utf(k, &mut out);
        out.push(1);
        utf(v, &mut out);
    }
    out
}

const NIFI_ROLES: [&str; 2] = ["Cluster Coordinator", "Primary Node"];

/// A NiFi node's session and its mutex node in each role's election.
struct NiFiNode {
    c: zk::Client,
    locks: Vec<String>,
}

struct NiFi {
    base: String,
    nodes: Mutex<Vec<NiFiNode>>,
    lock_ids: std::sync::atomic::AtomicU64,
}

impl NiFi {
    /// Node `i` joins the election of every role: a protected
    /// `_c_<uuid>-lock-` node holding its participant id.
    async fn join(&self, i: usize) -> NiFiNode {
        let c = session().await;
        let mut locks = Vec::new();
        for role in NIFI_ROLES {
            let n = self
                .lock_ids
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            locks.push(
                put_sequential(
                    &c,
                    &format!("{}/leaders/{role}/_c_{}-lock-", self.base, uuid(n)),
                    format!("nifi-{i}.example.net:11443").as_bytes(),
                    EphemeralSequential,
                )
                .await,
            );
        }
        NiFiNode { c, locks }
    }

    async fn build(s: &zk::Client, root: &str) -> NiFi {
        let base = format!("{root}/nifi");
        put(s, &format!("{base}/leaders"), b"").await;
        for role in NIFI_ROLES {
            put_with(
                s,
                &format!("{base}/leaders/{role}"),
                b"",
                &Container.with_acls(zk::Acls::anyone_all()),
            )
            .await;
        }
        put(s, &format!("{base}/components"), b"").await;
        for (n, entries) in [
            (
                100,
                vec![
                    ("listing.timestamp", "1700000000123"),
                    ("processed.timestamp", "1700000000001"),
                ],
            ),
            (101, vec![("maxvalue.orders@!@id", "884213")]),
            (
                102,
                vec![
                    ("kafka.offset.orders.0", "1234567"),
                    ("kafka.offset.orders.1", "1234001"),
                ],
            ),
        ] {
            put(
                s,
                &format!("{base}/components/{}", uuid(n)),
                &nifi_state(&entries),
            )
            .await;
        }
        let nifi = NiFi {
            base,
            nodes: Mutex::new(Vec::new()),
            lock_ids: std::sync::atomic::AtomicU64::new(1000),
        };
        let mut nodes = Vec::new();
        for i in 1..=3 {
            nodes.push(nifi.join(i).await);
        }
        *nifi.nodes.lock().await = nodes;
        nifi
    }
}

impl App for NiFi {
    /// Nodes 2 and 3 take turns restarting and requeueing in both
    /// elections; node 1 stays leader of both roles.
    async fn churn(&self, round: usize) {
        let i = 1 + round % 2;
        let fresh = self.join(i + 1).await;
        let mut nodes = self.nodes.lock().await;
        for lock in &nodes[i].locks {
            remove(&nodes[i].c, lock).await;
        }
        nodes[i] = fresh;
    }
}

#[tokio::test]
async fn nifi_estate_copied_by_repair_while_elections_requeue_compares_identical_and_copy_faults_are_found(
) {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("nifi");
    let nifi = NiFi::build(&s, &root).await;
    let nifi = copy_while_churning(nifi, &root, 4).await;
    assert_identical("nifi", &root).await;
    let mut agent = watch("nifi", &root);
    let mut round = 1000;
    agent.stays_identical(&*nifi, &mut round, 3).await;

    let leader = nifi.nodes.lock().await[0].locks[0].clone();
    persist_ephemeral(&s, &t, &leader).await;
    let state = format!("{root}/nifi/components/{}", uuid(101));
    lose(&t, &state).await;
    let expected = [
        diff("node_kind", &leader),
        diff("missing_in_target", &state),
    ];
    assert_exactly("nifi", &root, &expected).await;
    agent.confirms_exactly(&expected).await;
}

// ---------------------------------------------------------------------------
// Hadoop HA and YARN

/// `HAZKInfoProto`, what a NameNode's failover controller writes.
fn ha_info(ns: &str, nn: &str, host: &str) -> Vec<u8> {
    [
        pb_bytes(1, ns.as_bytes()),
        pb_bytes(2, nn.as_bytes()),
        pb_bytes(3, host.as_bytes()),
        pb_int(4, 8020),
        pb_int(5, 8019),
    ]
    .concat()
}

/// `ActiveRMInfoProto`.
fn rm_info(cluster: &str, rm: &str) -> Vec<u8> {
    [pb_bytes(1, cluster.as_bytes()), pb_bytes(2, rm.as_bytes())].concat()
}

/// An elector's parent, lock value and the session holding its lock.
struct Elector {
    parent: String,
    value: Vec<u8>,
    session: zk::Client,
}

impl Elector {
    /// Becomes active: the lock first, then the breadcrumb (rewritten with
    /// the same bytes when the same node wins again).
    async fn become_active(parent: &str, value: &[u8], s: &zk::Client) -> Elector {
        let session = session().await;
        put_ephemeral(
            &session,
            &format!("{parent}/ActiveStandbyElectorLock"),
            value,
        )
        .await;
        let crumb = format!("{parent}/ActiveBreadCrumb");
        match s.set_data(&crumb, value, None).await {
            Ok(_) => {}
            Err(zk::Error::NoNode) => put(s, &crumb, value).await,
            Err(e) => panic!("set {crumb}: {e}"),
        }
        Elector {
            parent: parent.to_string(),
            value: value.to_vec(),
            session,
        }
    }
}

struct Hadoop {
    admin: zk::Client,
    /// ns1's elector stays put; ns2's and the RM's re-elect.
    _ns1: Elector,
    churning: Mutex<Vec<Elector>>,
}

impl Hadoop {
    async fn build(s: &zk::Client, root: &str) -> Hadoop {
        let ns1 = Elector::become_active(
            &format!("{root}/hadoop-ha/ns1"),
            &ha_info("ns1", "nn1", "nn1.example.net"),
            s,
        )
        .await;
        let ns2 = Elector::become_active(
            &format!("{root}/hadoop-ha/ns2"),
            &ha_info("ns2", "nn3", "nn3.example.net"),
            s,
        )
        .await;
        let rm = Elector::become_active(
            &format!("{root}/yarn-leader-election/yarn-cluster"),
            &rm_info("yarn-cluster", "rm1"),
            s,
        )
        .await;
        let store = format!("{root}/rmstore/ZKRMStateRoot");
        put(
            s,
            &format!("{store}/RMVersionNode"),
            &[pb_int(1, 1), pb_int(2, 5)].concat(),
        )
        .await;
        put(s, &format!("{store}/EpochNode"), &pb_int(1, 3)).await;
        for dir in [
            "AMRMTokenSecretManagerRoot",
            "ReservationSystemRoot",
            "ProxyCARoot",
        ] {
            put(s, &format!("{store}/{dir}"), b"").await;
        }
        for app in 1..=3u64 {
            let id = format!("application_1700000000000_{app:04}");
            let state = [
                pb_int(1, 1_700_000_000_000 + app),
                pb_bytes(3, b"hadoop"),
                pb_bytes(5, b"root.default"),
            ]
            .concat();
            put(s, &format!("{store}/RMAppRoot/{id}"), &state).await;
            put(
                s,
                &format!("{store}/RMAppRoot/{id}/appattempt_1700000000000_{app:04}_000001"),
                &[
                    pb_int(1, 1),
                    pb_bytes(2, b"container_1700000000000_0001_01_000001"),
                ]
                .concat(),
            )
            .await;
        }
        let dt = format!("{store}/RMDTSecretManagerRoot");
        put(
            s,
            &format!("{dt}/RMDTMasterKeysRoot/DelegationKey_1"),
            &[0, 0, 0, 1, 0x8b, 0x1f],
        )
        .await;
        put(
            s,
            &format!("{dt}/RMDTMasterKeysRoot/DelegationKey_2"),
            &[0, 0, 0, 2, 0x8b, 0x1f],
        )
        .await;
        put(
            s,
            &format!("{dt}/RMDelegationTokensRoot/RMDelegationToken_7"),
            &[0, 7, 0x11, 0x22],
        )
        .await;
        put(
            s,
            &format!("{dt}/RMDTSequentialNumber"),
            &7i32.to_be_bytes(),
        )
        .await;
        Hadoop {
            admin: s.clone(),
            _ns1: ns1,
            churning: Mutex::new(vec![ns2, rm]),
        }
    }
}

impl App for Hadoop {
    /// A failover controller's session expires and the same node wins the
    /// election again: the lock comes back on a new session and the
    /// breadcrumb is written again with the same bytes.
    async fn churn(&self, round: usize) {
        let mut electors = self.churning.lock().await;
        let i = round % electors.len();
        let old = &electors[i];
        remove(
            &old.session,
            &format!("{}/ActiveStandbyElectorLock", old.parent),
        )
        .await;
        let (parent, value) = (old.parent.clone(), old.value.clone());
        electors[i] = Elector::become_active(&parent, &value, &self.admin).await;
    }
}

#[tokio::test]
async fn hadoop_estate_copied_by_repair_while_electors_reelect_compares_identical_and_copy_faults_are_found(
) {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("hadoop");
    let hadoop = Hadoop::build(&s, &root).await;
    let hadoop = copy_while_churning(hadoop, &root, 4).await;
    assert_identical("hadoop", &root).await;
    let mut agent = watch("hadoop", &root);
    let mut round = 1000;
    agent.stays_identical(&*hadoop, &mut round, 3).await;

    // A lock copied as a persistent node: the standby would never take over.
    let lock = format!("{root}/hadoop-ha/ns1/ActiveStandbyElectorLock");
    persist_ephemeral(&s, &t, &lock).await;
    let attempt = format!(
        "{root}/rmstore/ZKRMStateRoot/RMAppRoot/application_1700000000000_0002/appattempt_1700000000000_0002_000001"
    );
    lose(&t, &attempt).await;
    let expected = [
        diff("node_kind", &lock),
        diff("missing_in_target", &attempt),
    ];
    assert_exactly("hadoop", &root, &expected).await;
    agent.confirms_exactly(&expected).await;
    drop(hadoop);
}

// ---------------------------------------------------------------------------
// Curator recipes

fn service_instance(name: &str, id: &str, port: u16) -> Vec<u8> {
    format!(
        "{{\"name\":\"{name}\",\"id\":\"{id}\",\"address\":\"10.0.0.5\",\"port\":{port},\"sslPort\":null,\
         \"payload\":null,\"registrationTimeUTC\":1700000000000,\"serviceType\":\"DYNAMIC\",\
         \"uriSpec\":{{\"parts\":[{{\"value\":\"http://\",\"variable\":false}},{{\"value\":\"address\",\"variable\":true}}]}}}}"
    )
    .into_bytes()
}

/// Service instance ids; the last one's final group is all decimal digits,
/// as one UUID in a few hundred is.
fn service_ids() -> [String; 3] {
    [
        uuid(7),
        uuid(8),
        "5f0c2a9e-3b7d-4c1a-9e2f-201811223344".to_string(),
    ]
}

/// A participant's session and its nodes in the recipes.
struct Participant {
    c: zk::Client,
    nodes: Vec<String>,
}

struct Curator {
    ns: String,
    ids: std::sync::atomic::AtomicU64,
    /// Per lock (and the latch): the participants queued, holder first.
    queues: Mutex<Vec<Vec<Participant>>>,
    services: Mutex<Vec<zk::Client>>,
}

impl Curator {
    const RECIPES: [&'static str; 3] = [
        "locks/orders-db/lock-",
        "locks/reports/lock-",
        "leader/scheduler/latch-",
    ];

    /// Joins a recipe on a new session: a protected ephemeral sequential node.
    async fn enqueue(&self, recipe: usize) -> Participant {
        let c = session().await;
        let (dir, name) = Self::RECIPES[recipe].rsplit_once('/').unwrap();
        let n = self.ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let node = put_sequential(
            &c,
            &format!("{}/{dir}/_c_{}-{name}", self.ns, uuid(n)),
            b"10.0.0.5",
            EphemeralSequential,
        )
        .await;
        Participant {
            c,
            nodes: vec![node],
        }
    }

    async fn register(&self, c: &zk::Client, k: usize) {
        let id = &service_ids()[k];
        put_ephemeral(
            c,
            &format!("{}/services/orders/{id}", self.ns),
            &service_instance("orders", id, 8080 + k as u16),
        )
        .await;
    }

    async fn build(s: &zk::Client, root: &str) -> Curator {
        let ns = format!("{root}/app");
        let containers = Container.with_acls(zk::Acls::anyone_all());
        for dir in [
            "locks/orders-db",
            "locks/reports",
            "leader/scheduler",
            "services/orders",
        ] {
            put_with(s, &format!("{ns}/{dir}"), b"", &containers).await;
        }
        let mut made = Vec::new();
        for k in 0..15 {
            made.push(
                put_sequential(
                    s,
                    &format!("{ns}/queues/jobs/queue-"),
                    format!("{{\"job\":\"reindex\",\"shard\":{k}}}").as_bytes(),
                    PersistentSequential,
                )
                .await,
            );
        }
        // Consumers took the first nine.
        for path in &made[..9] {
            remove(s, path).await;
        }
        let secured = secured_acl();
        put_with(
            s,
            &format!("{ns}/counters/workers"),
            &12i32.to_be_bytes(),
            &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&secured)),
        )
        .await;
        let curator = Curator {
            ns,
            ids: std::sync::atomic::AtomicU64::new(2000),
            queues: Mutex::new(Vec::new()),
            services: Mutex::new(Vec::new()),
        };
        let mut queues = Vec::new();
        for recipe in 0..Self::RECIPES.len() {
            let mut q = Vec::new();
            for _ in 0..3 {
                q.push(curator.enqueue(recipe).await);
            }
            queues.push(q);
        }
        *curator.queues.lock().await = queues;
        let mut services = Vec::new();
        for k in 0..3 {
            let c = session().await;
            curator.register(&c, k).await;
            services.push(c);
        }
        *curator.services.lock().await = services;
        curator
    }
}

impl App for Curator {
    /// A lock changes hands (the holder releases, a new waiter queues), a
    /// latch participant restarts, a service instance re-registers after
    /// its session was lost. Every queue keeps waiters, so no container
    /// parent is ever empty enough to be reaped.
    async fn churn(&self, round: usize) {
        let recipe = round % Self::RECIPES.len();
        let fresh = self.enqueue(recipe).await;
        {
            let mut queues = self.queues.lock().await;
            let q = &mut queues[recipe];
            let gone = q.remove(0);
            for node in &gone.nodes {
                remove(&gone.c, node).await;
            }
            q.push(fresh);
        }
        let k = round % 3;
        let mut services = self.services.lock().await;
        let id = &service_ids()[k];
        remove(&services[k], &format!("{}/services/orders/{id}", self.ns)).await;
        let c = session().await;
        self.register(&c, k).await;
        services[k] = c;
    }
}

#[tokio::test]
async fn curator_recipes_copied_by_repair_while_locks_change_hands_compare_identical_and_copy_faults_are_found(
) {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("curator");
    let curator = Curator::build(&s, &root).await;
    let curator = copy_while_churning(curator, &root, 6).await;
    assert_identical("curator", &root).await;
    let mut agent = watch("curator", &root);
    let mut round = 1000;
    agent.stays_identical(&*curator, &mut round, 3).await;

    let queue = format!("{root}/app/queues/jobs");
    recreate_with_counter_behind(&t, &queue).await;
    let count = format!("{root}/app/counters/workers");
    loosen_acl(&t, &count).await;
    let expected = [diff("sequence_counter", &queue), diff("acl", &count)];
    assert_exactly("curator", &root, &expected).await;
    agent.confirms_exactly(&expected).await;
    drop(curator);
}

// ---------------------------------------------------------------------------
// ClickHouse ReplicatedMergeTree

fn log_entry(replica: &str, part: &str) -> Vec<u8> {
    format!(
        "format version: 4\ncreate_time: 2023-11-14 22:13:20\nsource replica: {replica}\n\
         block_id: 202311_1234567890123456789_9876543210987654321\nget\n{part}\npart_type: Compact\n"
    )
    .into_bytes()
}

/// A replica's session, its `is_active` and its leader election node.
struct Replica {
    c: zk::Client,
    election: String,
}

struct ClickHouse {
    table: String,
    replicas: Mutex<Vec<Replica>>,
    /// The running insert's session, holding its block number's holder.
    _insert: zk::Client,
}

impl ClickHouse {
    /// Replica `r` activates: `is_active` (the server's UUID) and a node in
    /// the leader election, both on its session.
    async fn activate(table: &str, r: usize) -> Replica {
        let c = session().await;
        put_ephemeral(
            &c,
            &format!("{table}/replicas/r{r}/is_active"),
            uuid(r as u64 + 90).as_bytes(),
        )
        .await;
        let election = put_sequential(
            &c,
            &format!("{table}/leader_election/leader_election-"),
            format!("r{r}").as_bytes(),
            EphemeralSequential,
        )
        .await;
        Replica { c, election }
    }

    async fn build(s: &zk::Client, root: &str) -> ClickHouse {
        let table = format!("{root}/clickhouse/tables/01/events");
        put(
            s,
            &format!("{table}/metadata"),
            b"metadata format version: 1\ndate column: \nsampling expression: \nindex granularity: 8192\n\
              mode: 0\nsign column: \nprimary key: id\ndata format version: 1\npartition key: toYYYYMM(d)\n\
              granularity bytes: 10485760\n",
        )
        .await;
        put(
            s,
            &format!("{table}/columns"),
            b"columns format version: 1\n2 columns:\n`d` Date\n`id` UInt64\n",
        )
        .await;
        for dir in [
            "leader_election",
            "temp",
            "nonincrement_block_numbers",
            "quorum/parallel",
            "quorum/failed_parts",
            "async_blocks",
            "part_moves_shard",
            "zero_copy_s3",
            "zero_copy_hdfs",
        ] {
            put(s, &format!("{table}/{dir}"), b"").await;
        }
        put(s, &format!("{table}/quorum/last_part"), b"").await;
        put(s, &format!("{table}/alter_partition_version"), b"").await;
        put(
            s,
            &format!("{table}/pinned_part_uuids"),
            b"{\"part_uuids\":\"[]\"}",
        )
        .await;
        put(s, &format!("{table}/lost_part_count"), b"").await;
        // Eight inserts logged; the cleanup thread removed the oldest three.
        let mut made = Vec::new();
        for k in 0..8 {
            made.push(
                put_sequential(
                    s,
                    &format!("{table}/log/log-"),
                    &log_entry("r1", &format!("202311_{k}_{k}_0")),
                    PersistentSequential,
                )
                .await,
            );
        }
        for path in &made[..3] {
            remove(s, path).await;
        }
        // Dedup blocks, named by partition and the block's 128-bit hash.
        for k in 0..8u64 {
            let hi = 1_234_567_890_123_456_789u64.wrapping_mul(k + 1);
            let lo = 9_876_543_210_987_654_321u64.wrapping_add(k * 7_777_777_777);
            let path = format!("{table}/blocks/202311_{hi}_{lo}");
            put(s, &path, format!("202311_{k}_{k}_0").as_bytes()).await;
            if k < 3 {
                remove(s, &path).await;
            }
        }
        // Block numbers handed out to eight inserts; seven unlocked theirs,
        // one is still running with its holder in `temp`.
        let holder_session = session().await;
        for k in 0..8 {
            let holder = put_sequential(
                &holder_session,
                &format!("{table}/temp/abandonable_lock-"),
                b"",
                EphemeralSequential,
            )
            .await;
            let block = put_sequential(
                s,
                &format!("{table}/block_numbers/202311/block-"),
                holder.as_bytes(),
                PersistentSequential,
            )
            .await;
            if k < 7 {
                remove(s, &block).await;
                remove(&holder_session, &holder).await;
            }
        }
        // Five mutations; the two oldest finished and were cleaned up.
        let mut mutations = Vec::new();
        for k in 0..5 {
            mutations.push(
                put_sequential(
                    s,
                    &format!("{table}/mutations/"),
                    format!(
                    "format version: 1\ncreate time: 2023-11-14 22:13:2{k}\nsource replica: r1\n\
                     block numbers count: 1\n202311\t{}\ncommands: DELETE WHERE id = {k}\n",
                    k + 4
                )
                    .as_bytes(),
                    PersistentSequential,
                )
                .await,
            );
        }
        for path in &mutations[..2] {
            remove(s, path).await;
        }
        for r in 1..=2 {
            let replica = format!("{table}/replicas/r{r}");
            put(
                s,
                &format!("{replica}/host"),
                format!(
                    "host: ch-{r}.example.net\nport: 9009\ntcp_port: 9000\ndatabase: default\ntable: events\nscheme: http\n"
                )
                .as_bytes(),
            )
            .await;
            for (node, value) in [
                ("log_pointer", "8"),
                ("is_lost", "0"),
                ("metadata_version", "0"),
                ("mutation_pointer", "0000000002"),
                ("max_processed_insert_time", "1700000000"),
                ("min_unprocessed_insert_time", "0"),
                ("flags", ""),
            ] {
                put(s, &format!("{replica}/{node}"), value.as_bytes()).await;
            }
            put(
                s,
                &format!("{replica}/columns"),
                b"columns format version: 1\n2 columns:\n`d` Date\n`id` UInt64\n",
            )
            .await;
            let mut queued = Vec::new();
            for k in 0..6 {
                queued.push(
                    put_sequential(
                        s,
                        &format!("{replica}/queue/queue-"),
                        &log_entry("r1", &format!("202311_{k}_{k}_0")),
                        PersistentSequential,
                    )
                    .await,
                );
            }
            // Replica 1 has fetched everything, replica 2 all but two.
            let done = if r == 1 { 6 } else { 4 };
            for path in &queued[..done] {
                remove(s, path).await;
            }
            for k in 0..done {
                let part = format!("{replica}/parts/202311_{k}_{k}_0");
                put(
                    s,
                    &format!("{part}/columns"),
                    b"columns format version: 1\n2 columns:\n`d` Date\n`id` UInt64\n",
                )
                .await;
                put(
                    s,
                    &format!("{part}/checksums"),
                    &[1, 0x82, 0x13, k as u8, 0x5c, 0xd1],
                )
                .await;
            }
        }
        let mut replicas = Vec::new();
        for r in 1..=2 {
            replicas.push(Self::activate(&table, r).await);
        }
        ClickHouse {
            table,
            replicas: Mutex::new(replicas),
            _insert: holder_session,
        }
    }
}

impl App for ClickHouse {
    /// Replica 2 restarts: `is_active` and its election node go with the
    /// old session and come back on a new one.
    async fn churn(&self, _round: usize) {
        let mut replicas = self.replicas.lock().await;
        let old = &replicas[1];
        remove(&old.c, &old.election).await;
        remove(&old.c, &format!("{}/replicas/r2/is_active", self.table)).await;
        replicas[1] = Self::activate(&self.table, 2).await;
    }
}

#[tokio::test]
async fn clickhouse_replicated_table_copied_by_repair_while_replicas_restart_compares_identical_and_copy_faults_are_found(
) {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("clickhouse");
    let ch = ClickHouse::build(&s, &root).await;
    let ch = copy_while_churning(ch, &root, 4).await;
    assert_identical("clickhouse", &root).await;
    let mut agent = watch("clickhouse", &root);
    let mut round = 1000;
    agent.stays_identical(&*ch, &mut round, 3).await;

    let table = format!("{root}/clickhouse/tables/01/events");
    let behind = [
        format!("{table}/log"),
        format!("{table}/mutations"),
        format!("{table}/block_numbers/202311"),
        format!("{table}/replicas/r2/queue"),
    ];
    for parent in &behind {
        recreate_with_counter_behind(&t, parent).await;
    }
    // Dedup block names end in long digit runs but are no sequence numbers:
    // a copy that leaves their parent's counter low is still faithful.
    recreate_with_counter_behind(&t, &format!("{table}/blocks")).await;
    let lost = format!("{table}/replicas/r1/parts/202311_1_1_0/checksums");
    lose(&t, &lost).await;
    let mut expected: Vec<String> = behind.iter().map(|p| diff("sequence_counter", p)).collect();
    expected.push(diff("missing_in_target", &lost));
    assert_exactly("clickhouse", &root, &expected).await;
    agent.confirms_exactly(&expected).await;
    drop(ch);
}
