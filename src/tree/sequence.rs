//! Sequential znodes: the names that carry ZooKeeper's counter, and the
//! counter a parent hands its next sequential child. Compare, repair, the
//! report and the agent's watches all judge sequence counters by these.

/// Names ending in ZooKeeper's sequence suffix: `%010d` of a signed 32-bit
/// counter, so exactly ten digits (after overflow, a minus sign and ten
/// digits), not preceded by another digit. HBase's start codes
/// (`host,16020,1700000000000`) and ClickHouse's block hashes end in longer
/// digit runs and are not sequential.
pub(crate) fn looks_sequential(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some(start) = bytes.len().checked_sub(10) else {
        return false;
    };
    let digits = &bytes[start..];
    if !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    // Ten ASCII digits always parse.
    let value: u64 = name[start..].parse().unwrap_or(u64::MAX);
    match start.checked_sub(1).map(|i| bytes[i]) {
        None => value <= i32::MAX as u64,
        Some(b'-') => value <= 1 << 31,
        Some(b) if b.is_ascii_digit() => false,
        Some(_) => value <= i32::MAX as u64,
    }
}

/// The number ZooKeeper gives a node's next sequential child: how many
/// children were ever created under it. A stat does not hold it directly:
/// the server counts creates, and reports as `cversion` every create and
/// every delete (each child still there was created and not deleted), so
/// it is `(cversion + numChildren) / 2`. Comparing `cversion` alone would
/// take a target with more deletes for one that is ahead.
pub(crate) fn next_sequence(stat: &zookeeper_client::Stat) -> i64 {
    (i64::from(stat.cversion) + i64::from(stat.num_children)) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_suffix_is_ten_digits_of_a_signed_32_bit_counter() {
        assert!(looks_sequential("log-0000000012"));
        assert!(looks_sequential("0000000000"));
        assert!(looks_sequential("x2147483647"));
        // After overflow ZooKeeper's %010d prints a minus sign.
        assert!(looks_sequential("lock--2147483648"));
        assert!(!looks_sequential("x2147483648"));
        assert!(!looks_sequential("log-000000012"));
        assert!(!looks_sequential("config"));
        // Longer digit runs are not a sequence suffix.
        assert!(!looks_sequential("host,16020,1700000000000"));
        assert!(!looks_sequential("all_12345678901"));
    }
}
