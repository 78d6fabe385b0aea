#!/usr/bin/env python3
"""Test vectors for zkparity-digest-v1, computed from docs/digest.md alone.

Python 3 standard library only. Run:  python3 docs/digest_vectors.py

The worked example (docs/digest.md, "Worked example") is a walk rooted at
"/" (node name ""):

    ""   persistent  data b""       ACL [world:anyone:31]
    a    persistent  data b"hello"  ACL [world:anyone:31, ip:10.0.0.1:1]
    b    ephemeral   data b"x"      ACL [world:anyone:31]

The ACL of "a" is given out of order on purpose: the normal form sorts it.
The values printed here are pinned by the Rust test `v1_layout_is_stable`
in src/digest.rs.
"""

import hashlib
import struct

DIGEST_VERSION = "zkparity-digest-v1"

NODE_TAG = b"zkparity/node/v1\x00"
UNREADABLE_TAG = b"zkparity/unreadable/v1\x00"
ACL_TAG = b"zkparity/acl/v1\x00"
ACL_UNKNOWN_TAG = b"zkparity/acl-unknown/v1\x00"
SUBTREE_TAG = b"zkparity/subtree/v1\x00"
SUBTREE_ACL_TAG = b"zkparity/subtree-acl/v1\x00"

READ, WRITE, CREATE, DELETE, ADMIN = 1, 2, 4, 8, 16


def sha256(b):
    return hashlib.sha256(b).digest()


def u32(n):
    return struct.pack(">I", n)


def u64(n):
    return struct.pack(">Q", n)


def lp(b):
    """u32 big-endian length, then the bytes."""
    return u32(len(b)) + b


# -- ACL ---------------------------------------------------------------------

def normalize_acl(entries):
    """Sort (scheme, id, perms) with scheme and id compared as UTF-8 bytes.
    Duplicates are kept."""
    return sorted(entries, key=lambda e: (e[0].encode(), e[1].encode(), e[2]))


def acl_fingerprint(entries):
    """`entries` must already be in normal form."""
    m = ACL_TAG + u32(len(entries))
    for scheme, ident, perms in entries:
        m += lp(scheme.encode()) + lp(ident.encode()) + u32(perms)
    return sha256(m)


def unknown_acl_fingerprint():
    return sha256(ACL_UNKNOWN_TAG)


# -- nodes -------------------------------------------------------------------

def data_sha256(data):
    return sha256(data)


def node_digest(name, ephemeral, data, acl_fp):
    return sha256(
        NODE_TAG
        + lp(name.encode())
        + bytes([1 if ephemeral else 0])
        + u64(len(data))
        + data_sha256(data)
        + acl_fp
    )


def unreadable_digest(name):
    return sha256(UNREADABLE_TAG + lp(name.encode()))


# -- subtrees ----------------------------------------------------------------

def subtree(name, own, children):
    """`own` is (node digest, ACL fingerprint) for an included node, or None
    for a node the ephemeral policy leaves out. `children` are the
    (checksum, subtree ACL fingerprint) pairs of the included children, in
    bytewise name order. Returns (checksum, subtree ACL fingerprint)."""
    c = SUBTREE_TAG
    a = SUBTREE_ACL_TAG
    if own is None:
        c += b"\x00"
        a += b"\x00"
    else:
        digest, acl_fp = own
        c += b"\x01" + digest
        a += b"\x01" + lp(name.encode()) + acl_fp
    for child_checksum, child_acl in children:
        c += child_checksum
        a += child_acl
    return sha256(c), sha256(a)


class Node:
    def __init__(self, name, data, acl, ephemeral=False, children=()):
        self.name = name
        self.data = data
        self.acl = normalize_acl(acl)
        self.ephemeral = ephemeral
        self.children = sorted(children, key=lambda n: n.name.encode())
        self.acl_fp = acl_fingerprint(self.acl)
        self.digest = node_digest(name, ephemeral, data, self.acl_fp)


def summarise(node, policy):
    """Subtree summary of a readable tree on one side under an --ephemerals
    policy: None if the node is skipped, else a dict with the counts, the
    checksum, the subtree ACL fingerprint and whether it is in its parent's
    checksums."""
    if node.ephemeral and policy == "skip":
        return None
    included = not node.ephemeral or policy == "compare"
    counts = {
        "nodes": 1,
        "ephemerals": 1 if node.ephemeral else 0,
        "bytes": len(node.data),
        "unreadable": 0,
    }
    folded = []
    for child in node.children:
        s = summarise(child, policy)
        if s is None:
            continue
        for k in counts:
            counts[k] += s[k]
        if s["in_checksum"]:
            folded.append((s["checksum"], s["acl_fingerprint"]))
    own = (node.digest, node.acl_fp) if included else None
    checksum, acl = subtree(node.name, own, folded)
    return dict(counts, checksum=checksum, acl_fingerprint=acl, in_checksum=included)


def main():
    everyone = ("world", "anyone", READ | WRITE | CREATE | DELETE | ADMIN)
    a = Node("a", b"hello", [everyone, ("ip", "10.0.0.1", READ)])
    b = Node("b", b"x", [everyone], ephemeral=True)
    root = Node("", b"", [everyone], children=[b, a])

    print(DIGEST_VERSION)
    print()
    print("normal form of a's ACL:", a.acl)
    print()
    print("ACL fingerprints")
    print("  root [world:anyone:31]                ", root.acl_fp.hex())
    print("  a    [ip:10.0.0.1:1, world:anyone:31] ", a.acl_fp.hex())
    print("  b    [world:anyone:31]                ", b.acl_fp.hex())
    print("  unknown ACL                           ", unknown_acl_fingerprint().hex())
    print()
    print("data SHA-256")
    print('  b""      ', data_sha256(b"").hex())
    print('  b"hello" ', data_sha256(b"hello").hex())
    print('  b"x"     ', data_sha256(b"x").hex())
    print()
    print("node digests")
    print("  root ", root.digest.hex())
    print("  a    ", a.digest.hex())
    print("  b    ", b.digest.hex())
    print("  unreadable node named a ", unreadable_digest("a").hex())
    print()
    print("leaf subtrees under --ephemerals count")
    sa = summarise(a, "count")
    sb = summarise(b, "count")
    print("  a checksum         ", sa["checksum"].hex())
    print("  a ACL fingerprint  ", sa["acl_fingerprint"].hex())
    print("  b checksum         ", sb["checksum"].hex(), "(left out: not folded into the root)")
    print("  b ACL fingerprint  ", sb["acl_fingerprint"].hex())
    print()
    for policy in ("count", "skip", "compare"):
        s = summarise(root, policy)
        print("root subtree under --ephemerals", policy)
        print(
            "  nodes %d  ephemerals %d  bytes %d  unreadable %d"
            % (s["nodes"], s["ephemerals"], s["bytes"], s["unreadable"])
        )
        print("  checksum         ", s["checksum"].hex())
        print("  ACL fingerprint  ", s["acl_fingerprint"].hex())


if __name__ == "__main__":
    main()
