//! Writes trees into local servers started by this crate (see
//! [`crate::server`]): the test suite's fixtures, the benchmark's large trees
//! and, through [`crate::sample`], the demo's sample migration. zkparity
//! itself never writes here: comparing only reads.

use zookeeper_client as zk;

#[derive(Debug, thiserror::Error)]
#[error("writing {path}: {reason}")]
pub struct SeedError {
    pub path: String,
    pub reason: String,
}

fn seed_err(path: &str, e: impl std::fmt::Display) -> SeedError {
    SeedError {
        path: path.to_string(),
        reason: e.to_string(),
    }
}

/// Creates persistent nodes with open ACLs, batched into multi-writes and
/// pipelined. Parents must come before their children, in earlier batches or
/// earlier in the same batch.
pub async fn create_many<I>(client: &zk::Client, nodes: I) -> Result<u64, SeedError>
where
    I: IntoIterator<Item = (String, Vec<u8>)>,
{
    const BATCH: usize = 500;
    const IN_FLIGHT: usize = 8;
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let mut created = 0;
    let mut pending = futures::stream::FuturesOrdered::new();
    let mut batch: Vec<(String, Vec<u8>)> = Vec::with_capacity(BATCH);
    let mut nodes = nodes.into_iter().peekable();
    use futures::StreamExt;
    loop {
        let end = nodes.peek().is_none();
        if let Some(node) = nodes.next() {
            batch.push(node);
        }
        if batch.len() == BATCH || (end && !batch.is_empty()) {
            let mut writer = client.new_multi_writer();
            for (path, data) in &batch {
                writer
                    .add_create(path, data, &options)
                    .map_err(|e| seed_err(path, e))?;
            }
            let first = batch[0].0.clone();
            created += batch.len() as u64;
            batch.clear();
            let commit = writer.commit();
            pending.push_back(async move { commit.await.map_err(|e| seed_err(&first, e)) });
            // A child may sit in the batch after its parent's: keep the
            // window small enough that ordering on one session holds.
            if pending.len() >= IN_FLIGHT {
                if let Some(r) = pending.next().await {
                    r?;
                }
            }
        }
        if end {
            break;
        }
    }
    while let Some(r) = pending.next().await {
        r?;
    }
    Ok(created)
}

/// `parent/name`, without doubling the slash below the root.
fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Paths of a uniform tree below `root`, level by level: `fanout` children
/// named `n0..` per node, `depth` levels below the root.
pub fn uniform_tree_paths(root: &str, fanout: usize, depth: usize) -> Vec<String> {
    let mut all = Vec::new();
    let mut level = vec![root.to_string()];
    for _ in 0..depth {
        let mut next = Vec::with_capacity(level.len() * fanout);
        for parent in &level {
            for i in 0..fanout {
                next.push(child_path(parent, &format!("n{i}")));
            }
        }
        all.extend(next.iter().cloned());
        level = next;
    }
    all
}

/// Creates `root` (if missing) and a uniform tree below it, every node
/// holding `value_size` bytes. Returns the number of nodes created.
pub async fn create_uniform_tree(
    client: &zk::Client,
    root: &str,
    fanout: usize,
    depth: usize,
    value_size: usize,
) -> Result<u64, SeedError> {
    ensure_path(client, root).await?;
    let value = vec![b'v'; value_size];
    let paths = uniform_tree_paths(root, fanout, depth);
    create_many(client, paths.into_iter().map(|p| (p, value.clone()))).await
}

/// As [`create_uniform_tree`], with single creates pipelined on the session
/// instead of multi-writes, which a 3.4 server refuses from this client.
pub async fn create_uniform_tree_singly(
    client: &zk::Client,
    root: &str,
    fanout: usize,
    depth: usize,
    value_size: usize,
) -> Result<u64, SeedError> {
    use futures::StreamExt;
    ensure_path(client, root).await?;
    let value = vec![b'v'; value_size];
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let paths = uniform_tree_paths(root, fanout, depth);
    let n = paths.len() as u64;
    // In order on one session: a parent's create is sent, and so applied,
    // before its children's.
    let results: Vec<Result<(), SeedError>> = futures::stream::iter(paths)
        .map(|p| {
            let (value, options) = (&value, &options);
            async move {
                client
                    .create(&p, value, options)
                    .await
                    .map(drop)
                    .map_err(|e| seed_err(&p, e))
            }
        })
        .buffered(256)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(n)
}

/// Creates `path` and any missing ancestors, empty and open.
pub async fn ensure_path(client: &zk::Client, path: &str) -> Result<(), SeedError> {
    if path == "/" {
        return Ok(());
    }
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let mut at = String::new();
    for name in path.split('/').filter(|n| !n.is_empty()) {
        at.push('/');
        at.push_str(name);
        match client.create(&at, b"", &options).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(seed_err(&at, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_tree_has_fanout_powers() {
        let paths = uniform_tree_paths("/t", 3, 2);
        assert_eq!(paths.len(), 3 + 9);
        assert_eq!(paths[0], "/t/n0");
        assert_eq!(paths[3], "/t/n0/n0");
        assert_eq!(uniform_tree_paths("/", 2, 1), vec!["/n0", "/n1"]);
    }
}
