//! zkparity snapshot files: a lossless copy of a subtree (every node's data,
//! ACL, kind and stat) that can stand in for a live side in `compare` and
//! `repair` long after the ensemble is gone.
//!
//! The format (`docs/snapshot.md`) is JSON lines, optionally gzip-compressed:
//! a header line, one record per node (parents before their children), and a
//! trailer with the counts, the tree's Merkle checksum and the SHA-256 of
//! every line before it, so a truncated or edited file is refused.
//!
//! - [`read`]: checks a file and indexes it, then answers reads by path.
//!
//! Taking a snapshot of a side is [`crate::capture`]'s, which opens the side
//! through [`crate::source`] and writes the records defined here.

mod read;

use serde::{Deserialize, Serialize};

use crate::digest::{AclEntry, NodeKind};

pub use read::SnapshotFile;

pub(crate) const FORMAT: &str = "zkparity-snapshot";

/// The longest JSON line believed in zkparity's own files (snapshots,
/// repair plans): a line holds one node's value (base64) and its child
/// names or ACL, each of which a server sends in one reply of at most
/// `jute.maxbuffer` and its extra allowance, so a longer line is damage or
/// a bomb, and is never read into memory whole.
pub(crate) fn max_line() -> crate::error::Result<usize> {
    let field = crate::datadir::env_limits()?.max_field();
    Ok(field.saturating_mul(4).saturating_add(1 << 20))
}
pub(crate) const VERSION: u32 = 1;

/// The first line.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    pub format: String,
    pub version: u32,
    pub digest_version: String,
    /// The ensemble it was taken from (connect string, no credentials).
    pub source: String,
    /// The subtree's root.
    pub path: String,
    /// Exclude patterns in force when it was taken: those paths are not in
    /// the file, so a comparison leaves them out too.
    pub excludes: Vec<String>,
    /// The ephemeral policy the trailer's checksum was computed under.
    pub ephemerals: String,
    /// Seconds since the Unix epoch.
    pub created_unix: u64,
    pub zkparity: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatRecord {
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
}

impl StatRecord {
    pub(crate) fn from_zk(s: &zookeeper_client::Stat) -> StatRecord {
        StatRecord {
            czxid: s.czxid,
            mzxid: s.mzxid,
            pzxid: s.pzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion,
            aversion: s.aversion,
            ephemeral_owner: s.ephemeral_owner,
            data_length: s.data_length,
            num_children: s.num_children,
        }
    }

    pub(crate) fn to_zk(&self) -> zookeeper_client::Stat {
        zookeeper_client::Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            pzxid: self.pzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion,
            aversion: self.aversion,
            ephemeral_owner: self.ephemeral_owner,
            data_length: self.data_length,
            num_children: self.num_children,
        }
    }
}

/// One ACL entry as stored: digest ids in clear, since they are needed to
/// recreate the entry (by `repair`, too).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclRecord {
    pub scheme: String,
    pub id: String,
    pub perms: u32,
}

impl AclRecord {
    pub(crate) fn from_entry(e: &AclEntry) -> AclRecord {
        AclRecord {
            scheme: e.scheme.clone(),
            id: e.id.clone(),
            perms: e.perms,
        }
    }

    pub(crate) fn to_entry(&self) -> AclEntry {
        AclEntry {
            scheme: self.scheme.clone(),
            id: self.id.clone(),
            perms: self.perms,
        }
    }

    pub(crate) fn to_zk(&self) -> zookeeper_client::Acl {
        self.to_entry().to_zk()
    }
}

/// One line after the header: a node, or the trailer (`end`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Line {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Set for a node that could not be read (NoAuth): nothing else is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<NodeKind>,
    /// Base64 (standard alphabet, padded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<AclRecord>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat: Option<StatRecord>,
    /// Sorted bytewise, as the node listed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Trailer>,
}

/// The last line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Trailer {
    pub nodes: u64,
    pub ephemerals: u64,
    pub unreadable: u64,
    pub bytes: u64,
    /// The subtree's zkparity-digest-v1 checksum (hex), as `compare` computes
    /// it under the header's ephemeral policy and excludes.
    pub checksum: String,
    pub acl_fingerprint: String,
    /// Records (node lines) in the file, every node read included.
    pub records: u64,
    /// SHA-256 (hex) of every byte before this line, newlines included.
    pub sha256: String,
}
