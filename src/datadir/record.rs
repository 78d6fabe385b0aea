//! The records a data directory's files hold: a node's persisted stat, ACL
//! lists, and the transactions of the logs, decoded from jute.

use std::io::Read;

use super::jute::{Jute, JuteError, JuteResult, Limits};
use crate::digest::{normalize_acl, AclEntry};

/// ZooKeeper's `StatPersisted`, in its field order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

impl Stat {
    pub(crate) const BYTES: usize = 8 * 4 + 4 * 3 + 8 * 2;

    pub(crate) fn read<R: Read>(j: &mut Jute<R>) -> JuteResult<Stat> {
        Ok(Stat {
            czxid: j.i64()?,
            mzxid: j.i64()?,
            ctime: j.i64()?,
            mtime: j.i64()?,
            version: j.i32()?,
            cversion: j.i32()?,
            aversion: j.i32()?,
            ephemeral_owner: j.i64()?,
            pzxid: j.i64()?,
        })
    }

    /// From [`Stat::BYTES`] bytes as [`Stat::read`] reads them.
    pub(crate) fn decode(b: &[u8]) -> Stat {
        let l = |o: usize| i64::from_be_bytes(b[o..o + 8].try_into().unwrap_or_default());
        let i = |o: usize| i32::from_be_bytes(b[o..o + 4].try_into().unwrap_or_default());
        Stat {
            czxid: l(0),
            mzxid: l(8),
            ctime: l(16),
            mtime: l(24),
            version: i(32),
            cversion: i(36),
            aversion: i(40),
            ephemeral_owner: l(44),
            pzxid: l(52),
        }
    }

    /// As a server shows it to clients: the persisted cversion counts
    /// creates only, and clients see changes (a create and a delete for
    /// every child no longer there); container and TTL marks are hidden.
    pub(crate) fn to_zk(self, data_length: usize, num_children: usize) -> zookeeper_client::Stat {
        let children = num_children.min(i32::MAX as usize) as i32;
        let owner = match Owner::of(self.ephemeral_owner) {
            Owner::Session(s) => s,
            _ => 0,
        };
        zookeeper_client::Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            pzxid: self.pzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion.wrapping_mul(2).wrapping_sub(children),
            aversion: self.aversion,
            ephemeral_owner: owner,
            data_length: data_length.min(i32::MAX as usize) as i32,
            num_children: children,
        }
    }
}

/// An ACL list in the normal form (sorted).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Acl(pub Vec<AclEntry>);

impl Acl {
    /// world:anyone with every permission.
    pub(crate) fn open() -> Acl {
        Acl(vec![AclEntry {
            scheme: "world".into(),
            id: "anyone".into(),
            perms: 31,
        }])
    }

    pub(crate) fn read<R: Read>(j: &mut Jute<R>) -> JuteResult<Acl> {
        // perms and two string lengths.
        let n = j.count("ACL", 12)?;
        let mut v = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let perms = j.i32()? as u32;
            let scheme = j.ustring()?.unwrap_or_default();
            let id = j.ustring()?.unwrap_or_default();
            v.push(AclEntry { scheme, id, perms });
        }
        Ok(Acl(normalize_acl(v)))
    }
}

/// The ephemeral owner ZooKeeper gives a container node.
pub(crate) const CONTAINER_OWNER: i64 = i64::MIN;
/// The top byte of an owner that encodes a TTL (servers with extended
/// types on); the 16 bits below it are 0 for a TTL.
const TTL_MARK: i64 = 0xff;
const TTL_BITS: i64 = 0x0000_00ff_ffff_ffff;

/// What an ephemeral owner says a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    None,
    Session(i64),
    Container,
    /// Milliseconds.
    Ttl(i64),
}

impl Owner {
    pub(crate) fn of(owner: i64) -> Owner {
        if owner == 0 {
            Owner::None
        } else if owner == CONTAINER_OWNER {
            Owner::Container
        } else if (owner >> 56) & 0xff == TTL_MARK && (owner >> 40) & 0xffff == 0 {
            Owner::Ttl(owner & TTL_BITS)
        } else {
            Owner::Session(owner)
        }
    }
}

/// Transaction types, as ZooKeeper numbers them (`ZooDefs.OpCode`).
pub(crate) mod op {
    pub const ERROR: i32 = -1;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const SET_DATA: i32 = 5;
    pub const SET_ACL: i32 = 7;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
}

/// The header every logged transaction starts with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TxnHeader {
    pub client_id: i64,
    pub zxid: i64,
    pub time: i64,
    pub kind: i32,
}

/// One transaction's change to the tree.
#[derive(Clone, Debug)]
pub(crate) enum Txn {
    Create {
        path: String,
        data: Vec<u8>,
        acl: Acl,
        /// The new node's ephemeral owner (a session, the container mark or
        /// a TTL), 0 for persistent.
        owner: i64,
        /// -1: the parent's cversion goes up by one.
        parent_cversion: i32,
    },
    Delete {
        path: String,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Acl,
        version: i32,
    },
    Multi(Vec<Txn>),
    CreateSession,
    /// Removes the session's ephemerals.
    CloseSession,
    /// An operation that failed: changes nothing, and in a multi means
    /// that none of the multi happened.
    Error,
    /// Changes nothing: a version check.
    Nothing,
}

/// Decodes the transaction body of type `kind` logged by `client_id`,
/// whose first byte is at `base` of its file.
pub(crate) fn read_txn(
    kind: i32,
    client_id: i64,
    body: &[u8],
    base: u64,
    limits: Limits,
) -> JuteResult<Txn> {
    let end = body.len() as u64 + base;
    let mut j = Jute::new(body, base).with_limits(limits).with_end(end);
    read_body(&mut j, kind, client_id, end)
}

fn path<R: Read>(j: &mut Jute<R>) -> JuteResult<String> {
    let at = j.offset();
    j.ustring()?
        .ok_or_else(|| JuteError::at(at, "a transaction with a null path"))
}

/// A create without the parent's cversion (`CreateTxnV0`, the earliest
/// logs) is told apart by length.
fn read_body<R: Read>(j: &mut Jute<R>, kind: i32, client_id: i64, end: u64) -> JuteResult<Txn> {
    Ok(match kind {
        op::CREATE | op::CREATE2 => {
            let path = path(j)?;
            let data = j.buffer()?;
            let acl = Acl::read(j)?;
            let ephemeral = j.bool()?;
            // CreateTxnV0 ends here; CreateTxn adds the parent's cversion.
            let parent_cversion = if j.offset() + 4 <= end { j.i32()? } else { -1 };
            Txn::Create {
                path,
                data,
                acl,
                owner: if ephemeral { client_id } else { 0 },
                parent_cversion,
            }
        }
        op::CREATE_CONTAINER => Txn::Create {
            path: path(j)?,
            data: j.buffer()?,
            acl: Acl::read(j)?,
            parent_cversion: j.i32()?,
            owner: CONTAINER_OWNER,
        },
        op::CREATE_TTL => {
            let path = path(j)?;
            let data = j.buffer()?;
            let acl = Acl::read(j)?;
            let parent_cversion = j.i32()?;
            let ttl = j.i64()?;
            Txn::Create {
                path,
                data,
                acl,
                parent_cversion,
                owner: (TTL_MARK << 56) | (ttl & TTL_BITS),
            }
        }
        op::DELETE | op::DELETE_CONTAINER => Txn::Delete { path: path(j)? },
        op::SET_DATA | op::RECONFIG => Txn::SetData {
            path: path(j)?,
            data: j.buffer()?,
            version: j.i32()?,
        },
        op::SET_ACL => Txn::SetAcl {
            path: path(j)?,
            acl: Acl::read(j)?,
            version: j.i32()?,
        },
        op::MULTI => {
            // Each operation: its type and its body's length, at least.
            let n = j.count("multi", 8)?;
            let mut txns = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let kind_at = j.offset();
                let kind = j.i32()?;
                // The server refuses to nest multis: one inside another is
                // a crafted or damaged log, not recursion to follow.
                if kind == op::MULTI {
                    return Err(JuteError::at(
                        kind_at,
                        "a multi inside a multi, which ZooKeeper never logs",
                    ));
                }
                let at = j.offset();
                let body = j.buffer()?;
                let inner_end = at + 4 + body.len() as u64;
                let mut inner = Jute::new(&body[..], at + 4)
                    .with_limits(j.limits())
                    .with_end(inner_end);
                txns.push(read_body(&mut inner, kind, client_id, inner_end)?);
            }
            Txn::Multi(txns)
        }
        op::CREATE_SESSION => Txn::CreateSession,
        op::CLOSE_SESSION => Txn::CloseSession,
        op::ERROR => Txn::Error,
        op::CHECK => Txn::Nothing,
        other => {
            return Err(JuteError::at(
                j.offset(),
                format!("transaction type {other} is not one ZooKeeper logs"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_tell_sessions_containers_and_ttls_apart() {
        assert_eq!(Owner::of(0), Owner::None);
        assert_eq!(Owner::of(i64::MIN), Owner::Container);
        assert_eq!(
            Owner::of(0x0100_0000_0000_0001),
            Owner::Session(0x0100_0000_0000_0001)
        );
        let ttl = (0xffu64 << 56) as i64 | 3_600_000;
        assert_eq!(Owner::of(ttl), Owner::Ttl(3_600_000));
        // The 16 bits under the mark must be 0 for a TTL.
        let other = (0xffu64 << 56 | 1 << 40) as i64;
        assert_eq!(Owner::of(other), Owner::Session(other));
    }

    #[test]
    fn clients_see_changes_to_children_and_no_kind_marks() {
        let persisted = Stat {
            cversion: 5,
            ephemeral_owner: i64::MIN,
            ..Stat::default()
        };
        // Five creates, three children left: two deletes, seven changes.
        let seen = persisted.to_zk(4, 3);
        assert_eq!(seen.cversion, 7);
        assert_eq!(seen.ephemeral_owner, 0, "a container shows no owner");
        assert_eq!((seen.data_length, seen.num_children), (4, 3));
        let session = Stat {
            ephemeral_owner: 42,
            ..Stat::default()
        };
        assert_eq!(session.to_zk(0, 0).ephemeral_owner, 42);
    }
}
