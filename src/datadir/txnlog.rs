//! ZooKeeper transaction logs (`log.<zxid>`): a header, then records of an
//! Adler-32, a length, the transaction (header and body) and an end byte.
//! Servers preallocate the file with zeros, so a zero length is the end. A
//! record cut short or failing its checksum is the end of the log when
//! nothing but zeros follows it (a server appending, or killed while
//! writing); with data after it, the log is damaged.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::jute::{check_field, Jute, JuteError, Limits};
use super::record::{read_txn, Txn, TxnHeader};

/// "ZKLG".
pub(crate) const LOG_MAGIC: [u8; 4] = *b"ZKLG";
/// The byte after every record.
const END_OF_RECORD: u8 = b'B';
/// TxnHeader: client id, cxid, zxid, time, type.
const HEADER_BYTES: usize = 8 + 4 + 8 + 8 + 4;

/// One transaction read.
pub(crate) struct Entry {
    pub header: TxnHeader,
    pub txn: Txn,
    pub offset: u64,
}

/// How a log ended.
#[derive(Debug, Clone)]
pub(crate) enum End {
    /// The last record was whole; zeros or nothing after it.
    Clean,
    /// A last record cut short or not yet whole (only zeros after it).
    CutTail { offset: u64, reason: String },
    /// The reader stopped early, as asked.
    Stopped,
}

/// A damaged log.
#[derive(Debug)]
pub(crate) struct LogError {
    pub file: PathBuf,
    pub offset: u64,
    pub reason: String,
}

/// Whether the caller wants more records.
pub(crate) enum Flow {
    More,
    Stop,
}

/// Reads `path`, handing each whole record to `each`. A record is one
/// jute buffer to the server, so `limits` bound it as a whole.
pub(crate) fn read_log(
    path: &Path,
    limits: Limits,
    mut each: impl FnMut(Entry) -> Result<Flow, LogError>,
) -> Result<End, LogError> {
    let err = |offset: u64, reason: String| LogError {
        file: path.to_path_buf(),
        offset,
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| err(0, format!("cannot be opened: {e}")))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    let mut j = Jute::new(BufReader::with_capacity(1 << 20, file), 0)
        .with_limits(limits)
        .with_end(size);
    let from = |e: JuteError| err(e.offset, e.reason);
    // A log just created, before its header was written.
    if j.at_end().map_err(from)? {
        return Ok(End::Clean);
    }
    let magic = j.i32().map_err(from)?;
    if magic.to_be_bytes() != LOG_MAGIC {
        return Err(err(
            0,
            "not a ZooKeeper transaction log (no ZKLG header)".into(),
        ));
    }
    let version = j.i32().map_err(from)?;
    if version != 2 {
        return Err(err(
            4,
            format!("log format version {version} (only 2 is known)"),
        ));
    }
    let _dbid = j.i64().map_err(from)?;
    loop {
        let offset = j.offset();
        if j.at_end().map_err(from)? {
            return Ok(End::Clean);
        }
        // Whatever goes wrong from here is a cut tail if only zeros follow.
        let record = (|| -> Result<Option<(i64, Vec<u8>)>, JuteError> {
            let crc = j.i64()?;
            let at = j.offset();
            let len = j.i32()?;
            if len == 0 {
                return Ok(None);
            }
            if len < 0 || len as u64 > size {
                return Err(JuteError::at(at, format!("record length {len}")));
            }
            check_field(at, "record", len as usize, limits)?;
            let mut bytes = vec![0u8; len as usize];
            j.read_into(&mut bytes)?;
            let at = j.offset();
            if j.u8()? != END_OF_RECORD {
                return Err(JuteError::at(at, "no end-of-record byte"));
            }
            Ok(Some((crc, bytes)))
        })();
        let (crc, bytes) = match record {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(End::Clean),
            Err(e) => return tail_or_damage(path, offset, e.reason, j.rest_is_zero()),
        };
        let mut sum = adler2::Adler32::new();
        sum.write_slice(&bytes);
        if crc as u64 != sum.checksum() as u64 {
            let reason = "checksum does not match the record".to_string();
            return tail_or_damage(path, offset, reason, j.rest_is_zero());
        }
        if bytes.len() < HEADER_BYTES {
            return Err(err(
                offset,
                "a record shorter than a transaction header".into(),
            ));
        }
        let l = |o: usize| i64::from_be_bytes(bytes[o..o + 8].try_into().unwrap_or_default());
        let header = TxnHeader {
            client_id: l(0),
            zxid: l(12),
            time: l(20),
            kind: i32::from_be_bytes(bytes[28..32].try_into().unwrap_or_default()),
        };
        let body_at = offset + 12 + HEADER_BYTES as u64;
        let txn = read_txn(
            header.kind,
            header.client_id,
            &bytes[HEADER_BYTES..],
            body_at,
            limits,
        )
        .map_err(|e| {
            err(
                e.offset,
                format!("transaction {:#x}: {}", header.zxid, e.reason),
            )
        })?;
        if let Flow::Stop = each(Entry {
            header,
            txn,
            offset,
        })? {
            return Ok(End::Stopped);
        }
    }
}

fn tail_or_damage(
    path: &Path,
    offset: u64,
    reason: String,
    zeros_after: bool,
) -> Result<End, LogError> {
    if zeros_after {
        Ok(End::CutTail { offset, reason })
    } else {
        Err(LogError {
            file: path.to_path_buf(),
            offset,
            reason: format!("{reason}, and data follows: the log is damaged"),
        })
    }
}
