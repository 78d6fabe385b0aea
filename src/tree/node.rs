//! What a walk knows of a node: [`SideNode`] for one side's answer,
//! [`NodeRead`] for a node that was read, [`SubtreeSummary`] for a finished
//! subtree, and the [`EphemeralPolicy`] that decides how ephemerals count.

use zookeeper_client as zk;

use crate::digest::{self, AclEntry, Hash, NodeKind};

/// What to do with ephemeral nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EphemeralPolicy {
    /// Leave them out entirely: not counted, not compared.
    Skip,
    /// Count them per side, but neither compare them nor include them in
    /// checksums: live sessions differ between ensembles by nature.
    Count,
    /// Treat them like any other node.
    Compare,
}

impl EphemeralPolicy {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EphemeralPolicy::Skip => "skip",
            EphemeralPolicy::Count => "count",
            EphemeralPolicy::Compare => "compare",
        }
    }
}

/// What one side knows of one node.
#[derive(Debug)]
pub enum SideNode {
    /// Not there (never listed on this side, or gone before it was read).
    Absent,
    Present(Box<NodeRead>),
    /// Listed but not readable: NoAuth or another per-node error.
    Unreadable(String),
}

impl SideNode {
    pub fn present(&self) -> Option<&NodeRead> {
        match self {
            SideNode::Present(n) => Some(n),
            _ => None,
        }
    }
}

/// One node as read, with its data reduced to length and SHA-256.
#[derive(Debug)]
pub struct NodeRead {
    /// `None` where the side has no stat (a zktreeutil file).
    pub stat: Option<zk::Stat>,
    pub kind: NodeKind,
    pub data_len: u64,
    pub data_sha256: Hash,
    /// The bytes themselves, only when asked for
    /// ([`super::ReaderOptions::keep_data`]): snapshots and repairs need
    /// them, comparisons do not.
    pub data: Option<Vec<u8>>,
    /// Sorted bytewise.
    pub children: Vec<String>,
    /// In normal form (sorted); `None` where ACLs are not read (a side that
    /// holds none, such as a zktreeutil file, leaves them out on both sides).
    pub acl: Option<Vec<AclEntry>>,
    /// Of the empty list when `acl` is `None`, so both sides agree.
    pub acl_fingerprint: Hash,
    /// The node digest (name, kind, data, ACL).
    pub digest: Hash,
}

impl NodeRead {
    /// Builds a node from its parts; `name` is what its digest is taken under.
    pub(crate) fn new(
        name: &str,
        kind: NodeKind,
        data: Vec<u8>,
        keep_data: bool,
        stat: Option<zk::Stat>,
        acl: Option<Vec<AclEntry>>,
        mut children: Vec<String>,
    ) -> NodeRead {
        children.sort_unstable();
        let acl_fingerprint = digest::acl_fingerprint(acl.as_deref().unwrap_or(&[]));
        NodeRead::from_slice(
            name,
            kind,
            &data,
            false,
            stat,
            acl,
            acl_fingerprint,
            children,
        )
        .keeping(data, keep_data)
    }

    /// The node with `data`, its own, as its data if `keep`: moved, where
    /// [`NodeRead::from_slice`] would copy it.
    pub(crate) fn keeping(mut self, data: Vec<u8>, keep: bool) -> NodeRead {
        self.data = keep.then_some(data);
        self
    }

    /// Builds a node from its parts, its ACL's fingerprint already known,
    /// with the data borrowed: copied only when kept (see
    /// [`NodeRead::keeping`] to move it instead).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_slice(
        name: &str,
        kind: NodeKind,
        data: &[u8],
        keep_data: bool,
        stat: Option<zk::Stat>,
        acl: Option<Vec<AclEntry>>,
        acl_fingerprint: Hash,
        children: Vec<String>,
    ) -> NodeRead {
        let data_sha256 = digest::data_sha256(data);
        let data_len = data.len() as u64;
        let node_digest = digest::node_digest(name, kind, data_len, &data_sha256, &acl_fingerprint);
        NodeRead {
            stat,
            kind,
            data_len,
            data_sha256,
            data: keep_data.then(|| data.to_vec()),
            children,
            acl,
            acl_fingerprint,
            digest: node_digest,
        }
    }
}

/// Counts and checksums of one subtree on one side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubtreeSummary {
    pub nodes: u64,
    pub ephemerals: u64,
    pub bytes: u64,
    pub unreadable: u64,
    pub checksum: Hash,
    pub acl_fingerprint: Hash,
    /// False for a node the ephemeral policy keeps out of checksums.
    pub in_checksum: bool,
}
