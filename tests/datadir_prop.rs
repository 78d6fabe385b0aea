//! No damage to a ZooKeeper data directory makes its reader panic: real
//! snapshots and logs of 3.4.6, 3.8.0 and 3.9.3 servers (snappy), with bytes
//! flipped, files cut or grown, files removed, and arbitrary `--at-zxid`s.
//! A directory that is refused is refused with a data-directory or file
//! error naming a path; one that is accepted is walked whole.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use zkparity::datadir::DataDir;
use zkparity::error::Error;
use zkparity::tree::{ReaderOptions, SideNode};

const RELEASES: [&str; 3] = ["3.4.6", "3.8.0", "3.9.3"];

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn fixture(release: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/zookeeper")
        .join(release)
}

/// The fixture's files, sorted by name.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("version-2"))
        .expect("fixture")
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn copy(release: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(tmp.path().join("version-2")).expect("mkdir");
    for f in files(&fixture(release)) {
        std::fs::copy(
            &f,
            tmp.path().join("version-2").join(f.file_name().unwrap()),
        )
        .expect("copy");
    }
    tmp
}

/// Every node, breadth first from the root: the walk a comparison makes.
fn walk(d: &DataDir) -> usize {
    let mut level = vec!["/".to_string()];
    let mut seen = 0;
    while !level.is_empty() {
        let paths: Vec<&str> = level.iter().map(String::as_str).collect();
        let names: Vec<&str> = paths
            .iter()
            .map(|p| p.rsplit('/').next().unwrap_or(""))
            .collect();
        let nodes = d
            .read_nodes(&paths, &names)
            .expect("an opened directory reads");
        let mut next = Vec::new();
        for (path, node) in paths.iter().zip(nodes) {
            if let SideNode::Present(n) = node {
                seen += 1;
                for c in &n.children {
                    next.push(if *path == "/" {
                        format!("/{c}")
                    } else {
                        format!("{path}/{c}")
                    });
                }
            }
        }
        level = next;
    }
    seen
}

fn open(dir: &Path, at: Option<i64>) {
    let options = ReaderOptions {
        keep_data: true,
        ..ReaderOptions::default()
    };
    match DataDir::open(dir, at, &options) {
        Ok(d) => {
            assert!(walk(&d) >= 1, "an accepted directory has its root");
        }
        Err(Error::DataDir { path, .. }) => {
            assert!(!path.as_os_str().is_empty());
        }
        Err(Error::Io { context, .. }) => assert!(!context.is_empty()),
        Err(other) => panic!("an unexpected kind of error: {other}"),
    }
}

#[test]
fn every_fixture_reads_whole_as_it_is() {
    for release in RELEASES {
        let options = ReaderOptions::default();
        let d = DataDir::open(&fixture(release), None, &options)
            .unwrap_or_else(|e| panic!("{release}: {e}"));
        assert!(walk(&d) > 15, "{release}");
        assert!(d.position().applied > 0, "{release} replays logs");
        assert!(
            d.position().warnings.is_empty(),
            "{release}: {:?}",
            d.position().warnings
        );
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn flipped_bytes_never_panic(
        release in 0..RELEASES.len(),
        file in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
        count in 1usize..4,
    ) {
        let tmp = copy(RELEASES[release]);
        let f = file.get(&files(tmp.path())).clone();
        let mut bytes = std::fs::read(&f).expect("read");
        for k in 0..count {
            let i = (at.index(bytes.len()) + k * 7919) % bytes.len();
            bytes[i] ^= xor;
        }
        std::fs::write(&f, bytes).expect("write");
        open(tmp.path(), None);
    }

    #[test]
    fn cut_grown_or_missing_files_never_panic(
        release in 0..RELEASES.len(),
        file in any::<prop::sample::Index>(),
        how in 0u8..3,
        at in any::<prop::sample::Index>(),
        junk in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let tmp = copy(RELEASES[release]);
        let f = file.get(&files(tmp.path())).clone();
        let mut bytes = std::fs::read(&f).expect("read");
        match how {
            0 => bytes.truncate(at.index(bytes.len())),
            1 => bytes.extend_from_slice(&junk),
            _ => {
                std::fs::remove_file(&f).expect("remove");
                open(tmp.path(), None);
                return Ok(());
            }
        }
        std::fs::write(&f, bytes).expect("write");
        open(tmp.path(), None);
    }

    #[test]
    fn any_at_zxid_is_read_or_refused_without_panic(
        release in 0..RELEASES.len(),
        at in 0i64..0x60,
    ) {
        let tmp = copy(RELEASES[release]);
        open(tmp.path(), Some(at));
    }
}
