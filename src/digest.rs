//! The versioned node digest, ACL fingerprint and per-subtree Merkle checksum.
//!
//! Everything here is specified byte for byte in `docs/digest.md`; a digest
//! computed by any build that implements the same version compares with any
//! other. zxids, times and versions are deliberately left out: they always
//! differ between two ensembles that hold the same data.

use sha2::{Digest, Sha256};

/// Names the byte layout below; bump it whenever a single byte changes.
pub(crate) const DIGEST_VERSION: &str = "zkparity-digest-v1";

pub(crate) type Hash = [u8; 32];

const NODE_TAG: &[u8] = b"zkparity/node/v1\0";
const UNREADABLE_TAG: &[u8] = b"zkparity/unreadable/v1\0";
const ACL_TAG: &[u8] = b"zkparity/acl/v1\0";
const ACL_UNKNOWN_TAG: &[u8] = b"zkparity/acl-unknown/v1\0";
const SUBTREE_TAG: &[u8] = b"zkparity/subtree/v1\0";
const SUBTREE_ACL_TAG: &[u8] = b"zkparity/subtree-acl/v1\0";

/// What kind of node it is. Live servers report container and TTL nodes with
/// ephemeralOwner 0, so a live side sees them as `Persistent`; a data
/// directory holds the marks that tell them, and a comparison of two such
/// sides uses `Container` and `Ttl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Persistent,
    Ephemeral,
    Container,
    Ttl,
}

impl NodeKind {
    pub(crate) fn from_ephemeral_owner(owner: i64) -> NodeKind {
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
            NodeKind::Container => 2,
            NodeKind::Ttl => 3,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            NodeKind::Persistent => "persistent",
            NodeKind::Ephemeral => "ephemeral",
            NodeKind::Container => "container",
            NodeKind::Ttl => "ttl",
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

/// ZooKeeper's permissions and their bits on the wire.
fn permission_bits() -> [(zookeeper_client::Permission, u32); 5] {
    use zookeeper_client::Permission as P;
    [
        (P::READ, 1),
        (P::WRITE, 2),
        (P::CREATE, 4),
        (P::DELETE, 8),
        (P::ADMIN, 16),
    ]
}

impl AclEntry {
    pub(crate) fn from_zk(acl: &zookeeper_client::Acl) -> AclEntry {
        let p = acl.permission();
        let perms = permission_bits()
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

    pub(crate) fn to_zk(&self) -> zookeeper_client::Acl {
        let permission = permission_bits()
            .iter()
            .filter(|(_, bit)| self.perms & bit != 0)
            .fold(zookeeper_client::Permission::NONE, |p, (perm, _)| p | *perm);
        zookeeper_client::Acl::new(
            permission,
            zookeeper_client::AuthId::new(&self.scheme, &self.id),
        )
    }

    /// A digest id the server hid: without ADMIN on a node, ZooKeeper
    /// shows `user:x` in place of `user:hash`. A real hash is base64 of
    /// SHA-1, never `x`.
    pub(crate) fn is_redacted(&self) -> bool {
        self.scheme == "digest" && self.id.rsplit_once(':').is_some_and(|(_, h)| h == "x")
    }

    /// The entry as far as a redacted view can tell: a digest id's user
    /// without the hash.
    fn visible(&self) -> (&str, &str, u32) {
        let id = if self.scheme == "digest" {
            self.id.split(':').next().unwrap_or("")
        } else {
            self.id.as_str()
        };
        (self.scheme.as_str(), id, self.perms)
    }

    /// zkCli's letters: c d r w a.
    pub(crate) fn perms_letters(&self) -> String {
        [(4, 'c'), (8, 'd'), (1, 'r'), (2, 'w'), (16, 'a')]
            .iter()
            .filter(|(bit, _)| self.perms & bit != 0)
            .map(|(_, c)| *c)
            .collect()
    }

    /// `scheme:id:perms`. A digest id carries the password's hash, so unless
    /// `show_ids` it is shown as the user and a short fingerprint of the id:
    /// still different when the hashes differ, but nothing to crack offline.
    pub(crate) fn display(&self, show_ids: bool) -> String {
        // A hidden id holds no hash: shown as the server gave it.
        let id = if self.scheme == "digest" && !show_ids && !self.is_redacted() {
            let user = self.id.split(':').next().unwrap_or("");
            let fp = Sha256::digest(self.id.as_bytes());
            format!("{user}:#{}", &hex::encode(fp)[..8])
        } else {
            self.id.clone()
        };
        format!("{}:{}:{}", self.scheme, id, self.perms_letters())
    }
}

/// Two ACLs of which at least one has redacted digest ids, compared on
/// what both sides can see: scheme, user and permissions. `Some(entries)`
/// when they agree that far, with the entries whose hash could not be
/// verified; `None` when they differ even so, or nothing was redacted.
pub(crate) fn agree_but_redacted(a: &[AclEntry], b: &[AclEntry]) -> Option<Vec<AclEntry>> {
    if !a.iter().chain(b).any(AclEntry::is_redacted) {
        return None;
    }
    fn visible(acl: &[AclEntry]) -> Vec<(&str, &str, u32)> {
        let mut v: Vec<(&str, &str, u32)> = acl.iter().map(AclEntry::visible).collect();
        v.sort_unstable();
        v
    }
    (visible(a) == visible(b)).then(|| {
        let mut hidden: Vec<AclEntry> = a
            .iter()
            .chain(b)
            .filter(|e| e.is_redacted())
            .cloned()
            .collect();
        hidden.sort();
        hidden.dedup();
        hidden
    })
}

/// Sorts entries into the normal form, so entry order never matters.
pub(crate) fn normalize_acl(mut acl: Vec<AclEntry>) -> Vec<AclEntry> {
    acl.sort();
    acl
}

fn put_bytes(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u32).to_be_bytes());
    h.update(bytes);
}

/// Fingerprint of a node's ACL; `acl` must be in normal form.
pub(crate) fn acl_fingerprint(acl: &[AclEntry]) -> Hash {
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
pub(crate) fn unknown_acl_fingerprint() -> Hash {
    Sha256::digest(ACL_UNKNOWN_TAG).into()
}

pub fn data_sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// Digest of one node: name, kind, data and ACL.
pub(crate) fn node_digest(
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
pub(crate) fn unreadable_digest(name: &str) -> Hash {
    let mut h = Sha256::new();
    h.update(UNREADABLE_TAG);
    put_bytes(&mut h, name.as_bytes());
    h.finalize().into()
}

/// Builds a subtree's checksum and ACL fingerprint from its node and its
/// children's subtree values, which must be added in name order.
pub(crate) struct SubtreeHasher {
    checksum: Sha256,
    acl: Sha256,
}

impl SubtreeHasher {
    /// `node` is `(node digest, ACL fingerprint)`, or `None` for a node the
    /// policy leaves out (an ephemeral when ephemerals are not compared).
    pub(crate) fn new(name: &str, node: Option<(&Hash, &Hash)>) -> SubtreeHasher {
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

    pub(crate) fn add_child(&mut self, checksum: &Hash, acl_fingerprint: &Hash) {
        self.checksum.update(checksum);
        self.acl.update(acl_fingerprint);
    }

    /// `(checksum, acl_fingerprint)`.
    pub(crate) fn finish(self) -> (Hash, Hash) {
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
        let a = normalize_acl(vec![
            entry("world", "anyone", 1),
            entry("ip", "10.0.0.1", 31),
        ]);
        let b = normalize_acl(vec![
            entry("ip", "10.0.0.1", 31),
            entry("world", "anyone", 1),
        ]);
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
    /// The expected values are the worked example of docs/digest.md, computed
    /// independently by docs/digest_vectors.py.
    #[test]
    fn v1_layout_is_stable() {
        let h = |x: &Hash| hex::encode(x);
        assert_eq!(DIGEST_VERSION, "zkparity-digest-v1");

        // ACLs; a's entries come unsorted and the normal form sorts them.
        let everyone = || entry("world", "anyone", 31);
        let root_acl = normalize_acl(vec![everyone()]);
        let a_acl = normalize_acl(vec![everyone(), entry("ip", "10.0.0.1", 1)]);
        assert_eq!(a_acl, vec![entry("ip", "10.0.0.1", 1), everyone()]);
        let b_acl = normalize_acl(vec![everyone()]);
        let root_fp = acl_fingerprint(&root_acl);
        let a_fp = acl_fingerprint(&a_acl);
        let b_fp = acl_fingerprint(&b_acl);
        assert_eq!(
            h(&root_fp),
            "3ee5f444adf6da78e0e62cd401cf15322b1035577966dff032019453849bc8f3"
        );
        assert_eq!(
            h(&a_fp),
            "996a704c9af17c26e9e93ba135ee9e0b0f74dce36d06e0e98076daa815437c16"
        );
        assert_eq!(b_fp, root_fp);
        assert_eq!(
            h(&unknown_acl_fingerprint()),
            "6ae20591a290652af23c6ba1c018097526f80ecd9b7052fd2d5b3bb540245bee"
        );

        // Node digests: "" (the root), "a", and the ephemeral "b".
        let root = node_digest("", NodeKind::Persistent, 0, &data_sha256(b""), &root_fp);
        let a = node_digest("a", NodeKind::Persistent, 5, &data_sha256(b"hello"), &a_fp);
        let b = node_digest("b", NodeKind::Ephemeral, 1, &data_sha256(b"x"), &b_fp);
        assert_eq!(
            h(&root),
            "b6948ffd6847c1bd158678e5ac50238d98a36a6eb5bb18b9048623c8db93b386"
        );
        assert_eq!(
            h(&a),
            "6ae7b565aa85ca5638420fe00fa452aa4e3bfab3f70b6a38999d2bb0c7263d8c"
        );
        assert_eq!(
            h(&b),
            "78e5ae71d556f52eb04aef9da0a119509c68815e1155b79e8f598e2ab375703e"
        );
        assert_eq!(
            h(&unreadable_digest("a")),
            "6fb8ee96aa208b11d6f05aedd5aec2a0f74815c27fd8b5f689cc30993aab1bba"
        );

        // Leaf subtrees under --ephemerals count: "b" is left out.
        let (a_sum, a_sacl) = SubtreeHasher::new("a", Some((&a, &a_fp))).finish();
        let (b_sum, b_sacl) = SubtreeHasher::new("b", None).finish();
        assert_eq!(
            h(&a_sum),
            "7503aed5276f9f51a2468015a37f5310cbfec3d052e0be8870bc932427354241"
        );
        assert_eq!(
            h(&a_sacl),
            "bff9c5e0766f7c9f90051daac2971b09439f170579b77a8a3e6a356eddf4780d"
        );
        assert_eq!(
            h(&b_sum),
            "1a92dead606230465aeabc43afb4235989aaf0bec9e5fa941c5a6d34538981f3"
        );
        assert_eq!(
            h(&b_sacl),
            "7dffdb06fa2768a7562e920fbf8b7227a1113847f6ae09078b04fdaaaf002581"
        );

        // The root under count (and skip): only "a" is folded in.
        let mut r = SubtreeHasher::new("", Some((&root, &root_fp)));
        r.add_child(&a_sum, &a_sacl);
        let (r_sum, r_sacl) = r.finish();
        assert_eq!(
            h(&r_sum),
            "67feffc43ce7d84836be6aace0c6d8b33053c58484e17c1fed3d51b1cf6dc7cb"
        );
        assert_eq!(
            h(&r_sacl),
            "864e69366e2be11b88282b99d96e3324569e733d285cd226a45e052bdf49274c"
        );

        // The root under compare: "b" is included, after "a".
        let (b_sum, b_sacl) = SubtreeHasher::new("b", Some((&b, &b_fp))).finish();
        let mut r = SubtreeHasher::new("", Some((&root, &root_fp)));
        r.add_child(&a_sum, &a_sacl);
        r.add_child(&b_sum, &b_sacl);
        let (r_sum, r_sacl) = r.finish();
        assert_eq!(
            h(&r_sum),
            "e1c92f039c3f385cf918429478a0affc191c9606600a88de63c051edf21e1627"
        );
        assert_eq!(
            h(&r_sacl),
            "140f0b8e666e3e8a1c748c557ae6787086b7ef885bed12880ae4242a96f1cdca"
        );
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
